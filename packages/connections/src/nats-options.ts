import { jwtAuthenticator, nkeyAuthenticator, tokenAuthenticator, usernamePasswordAuthenticator, type Authenticator } from '@nats-io/nats-core';
import type { NodeConnectionOptions } from '@nats-io/transport-node';
import { ConfigError, type NatsAuth } from '@at-orchestrator/contracts';
import { RereadFile, checkCredentialFile, parseCreds, parseNkeySeed } from './credential-files.js';

/**
 * Turns NATS_URL and the NATS_* credential variables (config.nats.auth) into nats.js connection
 * options. nats.js v3 does not read credentials written in a URL, so they are taken out of the
 * server list here; the list that is passed on (and logged) never holds a secret.
 *
 * Rotation: nats.js's node transport reads caFile/certFile/keyFile again on every connect, and the
 * NKey and .creds authenticators below read their file again on every connect, so a replaced file is
 * used from the next reconnect without a restart.
 */

export type NatsAuthMethod = 'none' | 'url user/password' | 'url token' | 'user/password' | 'token' | 'nkey' | 'creds';

export interface NatsConnectionSettings {
  /** The options to hand to nats.js connect (servers without credentials). */
  readonly options: Pick<NodeConnectionOptions, 'servers' | 'authenticator' | 'tls'>;
  /** Server URLs without credentials: safe for logs and errors. */
  readonly servers: readonly string[];
  /** How the connection authenticates; never the secret itself. */
  readonly method: NatsAuthMethod;
  /** TLS is demanded (a TLS file is set or NATS_TLS_REQUIRED=true): a plaintext server is refused. */
  readonly tlsRequired: boolean;
}

/** Told when a rotated file cannot be read at a reconnect and the last good one is used. */
export type StaleFileListener = (variable: string, err: unknown) => void;

export const NO_NATS_AUTH: NatsAuth = Object.freeze({
  user: undefined,
  password: undefined,
  token: undefined,
  nkeySeedFile: undefined,
  credsFile: undefined,
  tls: Object.freeze({ caFile: undefined, certFile: undefined, keyFile: undefined, required: false }),
});

interface UrlCredentials {
  readonly user: string;
  readonly password: string | undefined;
}

/** Splits credentials off each server URL; every URL that carries them must carry the same ones. */
export function splitUrlCredentials(servers: readonly string[]): { servers: string[]; credentials: UrlCredentials | undefined } {
  let credentials: UrlCredentials | undefined;
  const plain = servers.map((server) => {
    let url: URL;
    try {
      url = new URL(server);
    } catch {
      return server; // host:port without a scheme: nats.js parses it, and it cannot hold credentials
    }
    if (url.username === '' && url.password === '') return server;
    const found: UrlCredentials = {
      user: decodeURIComponent(url.username),
      password: url.password === '' ? undefined : decodeURIComponent(url.password),
    };
    if (credentials !== undefined && (credentials.user !== found.user || credentials.password !== found.password)) {
      throw new ConfigError('NATS_URL=(value hidden) is not valid: expected the same credentials in every URL that has them');
    }
    credentials = found;
    return `${url.protocol}//${url.host}`;
  });
  return { servers: plain, credentials };
}

/**
 * Builds the options and checks every file named (exists, readable, parses) at once: a ConfigError
 * names the variable. Only one way to authenticate may be given (the URL's credentials count as one).
 */
export function natsConnectionSettings(
  serversIn: readonly string[],
  auth: NatsAuth = NO_NATS_AUTH,
  onStale: StaleFileListener = () => undefined,
): NatsConnectionSettings {
  const { servers, credentials } = splitUrlCredentials(serversIn);
  const fromVariables = [
    auth.user !== undefined ? 'NATS_USER' : undefined,
    auth.token !== undefined ? 'NATS_TOKEN' : undefined,
    auth.nkeySeedFile !== undefined ? 'NATS_NKEY_SEED_FILE' : undefined,
    auth.credsFile !== undefined ? 'NATS_CREDS_FILE' : undefined,
  ].filter((v) => v !== undefined);
  if (credentials !== undefined && fromVariables.length > 0) {
    throw new ConfigError(`NATS_URL credentials and ${fromVariables.join(' and ')} are both set: expected one way to authenticate to NATS`);
  }

  let method: NatsAuthMethod = 'none';
  let authenticator: Authenticator | undefined;
  if (credentials !== undefined) {
    method = credentials.password === undefined ? 'url token' : 'url user/password';
    authenticator =
      credentials.password === undefined ? tokenAuthenticator(credentials.user) : usernamePasswordAuthenticator(credentials.user, credentials.password);
  } else if (auth.user !== undefined) {
    method = 'user/password';
    authenticator = usernamePasswordAuthenticator(auth.user, auth.password ?? '');
  } else if (auth.token !== undefined) {
    method = 'token';
    authenticator = tokenAuthenticator(auth.token);
  } else if (auth.nkeySeedFile !== undefined) {
    method = 'nkey';
    authenticator = nkeyFileAuthenticator(auth.nkeySeedFile, onStale);
  } else if (auth.credsFile !== undefined) {
    method = 'creds';
    authenticator = credsFileAuthenticator(auth.credsFile, onStale);
  }

  const { caFile, certFile, keyFile, required } = auth.tls;
  if (caFile !== undefined) checkCredentialFile('NATS_TLS_CA_FILE', caFile, 'certificate');
  if (certFile !== undefined) checkCredentialFile('NATS_TLS_CERT_FILE', certFile, 'certificate');
  if (keyFile !== undefined) checkCredentialFile('NATS_TLS_KEY_FILE', keyFile, 'private key');
  const tlsRequired = required || caFile !== undefined || certFile !== undefined;
  // An object (even empty) makes nats.js refuse a server that offers no TLS; paths (not contents) so
  // that the node transport reads the files again at every connect.
  const tls = tlsRequired ? { ...(caFile === undefined ? {} : { caFile }), ...(certFile === undefined ? {} : { certFile, keyFile }) } : undefined;

  const options: NatsConnectionSettings['options'] = { servers };
  if (authenticator !== undefined) options.authenticator = authenticator;
  if (tls !== undefined) options.tls = tls;
  return { options, servers, method, tlsRequired };
}

/** Signs the server's nonce with the seed in the file, read again at every connect. */
function nkeyFileAuthenticator(path: string, onStale: StaleFileListener): Authenticator {
  const toSeed = (content: Buffer): Uint8Array => {
    parseNkeySeed(content);
    return new TextEncoder().encode(content.toString('utf8').trim());
  };
  const file = new RereadFile('NATS_NKEY_SEED_FILE', path, toSeed, toSeed(checkCredentialFile('NATS_NKEY_SEED_FILE', path, 'nkey seed')), onStale);
  return nkeyAuthenticator(() => file.current());
}

/** The JWT and the signature from one reading of the .creds file at every connect (never a mix of two). */
function credsFileAuthenticator(path: string, onStale: StaleFileListener): Authenticator {
  const toParts = (content: Buffer): { jwt: string; seed: Uint8Array } => {
    const { jwt, keyPair } = parseCreds(content);
    return { jwt, seed: keyPair.getSeed() };
  };
  const file = new RereadFile('NATS_CREDS_FILE', path, toParts, toParts(checkCredentialFile('NATS_CREDS_FILE', path, 'creds')), onStale);
  return (nonce?: string) => {
    const { jwt, seed } = file.current();
    return jwtAuthenticator(jwt, seed)(nonce);
  };
}

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createAccount, createOperator, createUser, encodeAccount, encodeOperator, encodeUser, fmtCreds, type KeyPair } from '@nats-io/jwt';
import type { Env } from '@at-orchestrator/contracts';

/**
 * One way to authenticate to NATS, as a test sets it up: the nats-server configuration that accepts
 * it and the environment a client needs. A server cannot mix a token with users, and .creds need
 * operator mode, so each kind gets its own server.
 */
export interface NatsCredentialKind {
  readonly name: 'user/password' | 'token' | 'nkey' | 'creds';
  /** nats-server configuration lines (appended to the generated file). */
  readonly serverConfig: string;
  /** Client variables (without NATS_URL, which depends on the server). */
  readonly env: Env;
  /** Values that must never appear in any output. */
  readonly secrets: readonly string[];
  /** NATS_URL for a server at host:port, credentials written in it where the kind allows. */
  url(hostPort: string, inUrl?: boolean): string;
}

export const NATS_PASSWORD = 'nats-pw-7f3c9a1e';
export const NATS_TOKEN = 'nats-token-b61d0e42';

export function userPasswordKind(): NatsCredentialKind {
  return {
    name: 'user/password',
    serverConfig: `authorization { users: [ { user: orch, password: ${JSON.stringify(NATS_PASSWORD)} } ] }`,
    env: { NATS_USER: 'orch', NATS_PASSWORD },
    secrets: [NATS_PASSWORD],
    url: (hostPort, inUrl = false) => (inUrl ? `nats://orch:${NATS_PASSWORD}@${hostPort}` : `nats://${hostPort}`),
  };
}

export function tokenKind(): NatsCredentialKind {
  return {
    name: 'token',
    serverConfig: `authorization { token: ${JSON.stringify(NATS_TOKEN)} }`,
    env: { NATS_TOKEN },
    secrets: [NATS_TOKEN],
    url: (hostPort, inUrl = false) => (inUrl ? `nats://${NATS_TOKEN}@${hostPort}` : `nats://${hostPort}`),
  };
}

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

export function nkeyKind(dir: string): NatsCredentialKind {
  const user = createUser();
  const seedFile = join(dir, 'orch.nk');
  writeFileSync(seedFile, `${text(user.getSeed())}\n`);
  return {
    name: 'nkey',
    serverConfig: `authorization { users: [ { nkey: ${user.getPublicKey()} } ] }`,
    env: { NATS_NKEY_SEED_FILE: seedFile },
    secrets: [text(user.getSeed())],
    url: (hostPort) => `nats://${hostPort}`,
  };
}

/** An operator, accounts with JetStream, and .creds of users of those accounts. */
export interface OperatorMode {
  /** Server configuration trusting the operator, with the given accounts (all by default) preloaded. */
  serverConfig(accounts?: readonly number[]): string;
  readonly accounts: readonly KeyPair[];
  /** Writes the .creds of a new user of account `account` to `path`; returns its seed. */
  writeUserCreds(path: string, account?: number): Promise<string>;
}

export async function operatorMode(accountCount = 1): Promise<OperatorMode> {
  const operator = createOperator();
  // nats-server 2.9 starts JetStream in operator mode only with a system account.
  const system = createAccount();
  const operatorJwt = await encodeOperator('test-operator', operator, { system_account: system.getPublicKey() });
  const systemJwt = await encodeAccount('SYS', system, {}, { signer: operator });
  const limits = { mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1, subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };
  const accounts = Array.from({ length: accountCount }, () => createAccount());
  const accountJwts = await Promise.all(accounts.map((a, i) => encodeAccount(`orchestrator-${i}`, a, { limits }, { signer: operator })));
  return {
    accounts,
    serverConfig: (which = accounts.map((_, i) => i)) =>
      [
        `operator: ${JSON.stringify(operatorJwt)}`,
        `system_account: ${system.getPublicKey()}`,
        'resolver: MEMORY',
        `resolver_preload: { ${[...which.map((i) => `${accounts[i]!.getPublicKey()}: ${JSON.stringify(accountJwts[i])}`), `${system.getPublicKey()}: ${JSON.stringify(systemJwt)}`].join(', ')} }`,
      ].join('\n'),
    writeUserCreds: async (path, account = 0) => {
      const user = createUser();
      const jwt = await encodeUser('orch', user, accounts[account]!);
      writeFileSync(path, fmtCreds(jwt, user));
      return text(user.getSeed());
    },
  };
}

export async function credsKind(dir: string): Promise<NatsCredentialKind> {
  const mode = await operatorMode();
  const credsFile = join(dir, 'orch.creds');
  const seed = await mode.writeUserCreds(credsFile);
  return {
    name: 'creds',
    serverConfig: mode.serverConfig(),
    env: { NATS_CREDS_FILE: credsFile },
    secrets: [seed],
    url: (hostPort) => `nats://${hostPort}`,
  };
}

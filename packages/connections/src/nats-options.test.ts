import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createUser, fromPublic } from '@nats-io/nkeys';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { ConfigError, type NatsAuth } from '@at-orchestrator/contracts';
import { NO_NATS_AUTH, natsConnectionSettings, splitUrlCredentials } from './nats-options.js';

// A self-signed certificate (public, no key needed): only its parsing is tested here.
const CERT = `-----BEGIN CERTIFICATE-----
MIIBfDCCASGgAwIBAgIUDAKOc1j7J7NYU+Dwmyh8jmF+6e8wCgYIKoZIzj0EAwIw
EjEQMA4GA1UEAwwHZml4dHVyZTAgFw0yNjEyMDYwMzI3MzNaGA8yMTI2MTExMjAz
MjczM1owEjEQMA4GA1UEAwwHZml4dHVyZTBZMBMGByqGSM49AgEGCCqGSM49AwEH
A0IABIWnkViWpjk7M6gtTUeMo9KjAJzlwKoTsb4P6oOhZ0jl9Sw3KSEaVOjJuS/9
qdtFst7q8R5cfJ2xyOeJiupeDSejUzBRMB0GA1UdDgQWBBRp9YkTihmEViZkFSwz
wKIvs6B0+jAfBgNVHSMEGDAWgBRp9YkTihmEViZkFSwzwKIvs6B0+jAPBgNVHRMB
Af8EBTADAQH/MAoGCCqGSM49BAMCA0kAMEYCIQDiPe80yTeiipisPnUQiD+cHVhA
qVuW3cIW1UJQbWXO0QIhAKysCHKJSxpPKL/k+3k4X1J+4FFCvgBQ4P7kEWTTmYPE
-----END CERTIFICATE-----
`;
const KEY = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;

const dir = mkdtempSync(join(tmpdir(), 'nats-options-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(content: string): string {
  const path = join(dir, `f${(n += 1)}`);
  writeFileSync(path, content);
  return path;
}

function auth(over: Partial<Omit<NatsAuth, 'tls'>> & { tls?: Partial<NatsAuth['tls']> } = {}): NatsAuth {
  return { ...NO_NATS_AUTH, ...over, tls: { ...NO_NATS_AUTH.tls, ...over.tls } };
}

function credsText(jwt: string, seed: string): string {
  return `-----BEGIN NATS USER JWT-----\n${jwt}\n------END NATS USER JWT------\n\n************************* IMPORTANT *************************\nNKEY Seed printed below can be used to sign and prove identity.\n\n-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n\n*************************************************************\n`;
}

const decode = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

function expectConfigError(fn: () => unknown, pattern: RegExp): ConfigError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  expect((caught as Error).message).toMatch(pattern);
  return caught as ConfigError;
}

describe('credentials written in NATS_URL', () => {
  it('user:password are taken out of the servers (nats.js ignores them) and given to an authenticator, decoded', () => {
    const s = natsConnectionSettings(['nats://orch:s3cr%40t@127.0.0.1:4222', 'nats://orch:s3cr%40t@10.0.0.2:4222'], NO_NATS_AUTH);
    expect(s.servers).toEqual(['nats://127.0.0.1:4222', 'nats://10.0.0.2:4222']);
    expect(s.options.servers).toEqual(s.servers);
    expect(s.method).toBe('url user/password');
    expect(typeof s.options.authenticator === 'function' && s.options.authenticator()).toEqual({ user: 'orch', pass: 's3cr@t' });
  });

  it('a lone user part is a token', () => {
    const s = natsConnectionSettings(['nats://t0ken-value@127.0.0.1:4222']);
    expect(s.method).toBe('url token');
    expect(typeof s.options.authenticator === 'function' && s.options.authenticator()).toEqual({ auth_token: 't0ken-value' });
    expect(s.servers.join()).not.toContain('t0ken');
  });

  it('URLs without credentials pass unchanged, and nothing authenticates', () => {
    const s = natsConnectionSettings(['nats://127.0.0.1:4222', 'tls://nats.example:4443']);
    expect(s.servers).toEqual(['nats://127.0.0.1:4222', 'tls://nats.example:4443']);
    expect(s.method).toBe('none');
    expect(s.options.authenticator).toBeUndefined();
    expect(s.options.tls).toBeUndefined();
  });

  it('different credentials in two URLs are refused without showing either', () => {
    const err = expectConfigError(() => splitUrlCredentials(['nats://a:pw-one@h1:4222', 'nats://a:pw-two@h2:4222']), /^NATS_URL=\(value hidden\)/);
    expect(err.message).not.toMatch(/pw-one|pw-two/);
  });

  it('URL credentials and a credential variable together are refused (one way to authenticate)', () => {
    const err = expectConfigError(() => natsConnectionSettings(['nats://a:secret-pw@h:4222'], auth({ token: 'tok-123' })), /NATS_URL credentials and NATS_TOKEN are both set/);
    expect(err.message).not.toMatch(/secret-pw|tok-123/);
  });
});

describe('credential variables', () => {
  it('NATS_USER/NATS_PASSWORD and NATS_TOKEN', () => {
    const up = natsConnectionSettings(['nats://h:4222'], auth({ user: 'orch', password: 'pw' }));
    expect(up.method).toBe('user/password');
    expect(typeof up.options.authenticator === 'function' && up.options.authenticator()).toEqual({ user: 'orch', pass: 'pw' });
    const token = natsConnectionSettings(['nats://h:4222'], auth({ token: 'tok' }));
    expect(token.method).toBe('token');
    expect(typeof token.options.authenticator === 'function' && token.options.authenticator()).toEqual({ auth_token: 'tok' });
  });

  it('NATS_NKEY_SEED_FILE: signs the nonce with the seed, read again at every connect (rotation)', () => {
    const first = createUser();
    const path = file(`${decode(first.getSeed())}\n`);
    const s = natsConnectionSettings(['nats://h:4222'], auth({ nkeySeedFile: path }));
    const authenticate = s.options.authenticator as (nonce?: string) => { nkey: string; sig: string };
    const a = authenticate('nonce-1');
    expect(a.nkey).toBe(first.getPublicKey());
    expect(fromPublic(a.nkey).verify(new TextEncoder().encode('nonce-1'), Buffer.from(a.sig, 'base64url'))).toBe(true);

    const second = createUser();
    writeFileSync(path, decode(second.getSeed()));
    expect(authenticate('nonce-2').nkey).toBe(second.getPublicKey());
  });

  it('NATS_CREDS_FILE: the JWT and the seed come from one reading of the file, again at every connect', () => {
    const first = createUser();
    const path = file(credsText('aaa.bbb.ccc', decode(first.getSeed())));
    const s = natsConnectionSettings(['nats://h:4222'], auth({ credsFile: path }));
    const authenticate = s.options.authenticator as (nonce?: string) => { jwt: string; nkey: string; sig: string };
    expect(authenticate('n')).toMatchObject({ jwt: 'aaa.bbb.ccc', nkey: first.getPublicKey() });
    const second = createUser();
    writeFileSync(path, credsText('ddd.eee.fff', decode(second.getSeed())));
    expect(authenticate('n')).toMatchObject({ jwt: 'ddd.eee.fff', nkey: second.getPublicKey() });
  });

  it('a rotated file that does not parse at a reconnect: the last good one is used, and the listener is told once', () => {
    const user = createUser();
    const path = file(credsText('aaa.bbb.ccc', decode(user.getSeed())));
    const stale = vi.fn();
    const s = natsConnectionSettings(['nats://h:4222'], auth({ credsFile: path }), stale);
    const authenticate = s.options.authenticator as (nonce?: string) => { jwt: string; nkey: string };
    writeFileSync(path, '-----BEGIN NATS USER JWT-----\nhalf wri');
    expect(authenticate('n').jwt).toBe('aaa.bbb.ccc');
    expect(authenticate('n').jwt).toBe('aaa.bbb.ccc');
    expect(stale).toHaveBeenCalledTimes(1);
    expect(stale.mock.calls[0]![0]).toBe('NATS_CREDS_FILE');
  });

  it.each([
    ['NATS_NKEY_SEED_FILE', (p: string) => auth({ nkeySeedFile: p })],
    ['NATS_CREDS_FILE', (p: string) => auth({ credsFile: p })],
    ['NATS_TLS_CA_FILE', (p: string) => auth({ tls: { caFile: p } })],
  ] as const)('%s: a missing file is a ConfigError naming the variable', (variable, make) => {
    expectConfigError(() => natsConnectionSettings(['nats://h:4222'], make(join(dir, 'missing'))), new RegExp(`^${variable}=".*missing" cannot be read: no such file`));
  });

  it.each([
    ['NATS_NKEY_SEED_FILE', (p: string) => auth({ nkeySeedFile: p }), /an NKey seed/],
    ['NATS_CREDS_FILE', (p: string) => auth({ credsFile: p }), /a \.creds file/],
    ['NATS_TLS_CA_FILE', (p: string) => auth({ tls: { caFile: p } }), /a PEM certificate/],
    ['NATS_TLS_CERT_FILE', (p: string) => auth({ tls: { certFile: p, keyFile: file(KEY) } }), /a PEM certificate/],
    ['NATS_TLS_KEY_FILE', (p: string) => auth({ tls: { certFile: file(CERT), keyFile: p } }), /a PEM private key/],
  ] as const)('%s: a file that does not parse is a ConfigError naming the variable, not showing the content', (variable, make, expected) => {
    const err = expectConfigError(() => natsConnectionSettings(['nats://h:4222'], make(file('SECRET-CONTENT not a credential'))), new RegExp(`^${variable}=.* is not valid: expected`));
    expect(err.message).toMatch(expected);
    expect(err.message).not.toContain('SECRET-CONTENT');
  });
});

describe('TLS', () => {
  it('CA and client certificate are passed as paths (the node transport reads them at every connect) and demand TLS', () => {
    const caFile = file(CERT);
    const certFile = file(CERT);
    const keyFile = file(KEY);
    const s = natsConnectionSettings(['nats://h:4222'], auth({ tls: { caFile, certFile, keyFile } }));
    expect(s.options.tls).toEqual({ caFile, certFile, keyFile });
    expect(s.tlsRequired).toBe(true);
  });

  it('NATS_TLS_REQUIRED=true alone: an empty tls object, which makes nats.js refuse a plaintext server', () => {
    const s = natsConnectionSettings(['nats://h:4222'], auth({ tls: { required: true } }));
    expect(s.options.tls).toEqual({});
    expect(s.tlsRequired).toBe(true);
  });
});

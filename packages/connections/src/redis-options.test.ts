import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { redisClusterSettings, redisConnectionSettings, redisSentinelSettings, type RedisAccess } from './redis-options.js';

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

const dir = mkdtempSync(join(tmpdir(), 'redis-options-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

const none: RedisAccess = { username: undefined, password: undefined, tls: { caFile: undefined, certFile: undefined, keyFile: undefined } };

describe('redis connection settings', () => {
  it('REDIS_USERNAME/REDIS_PASSWORD are used when the URL has no credentials', () => {
    expect(redisConnectionSettings('redis://h:6379', { ...none, username: 'orch', password: 'pw' })).toEqual({ username: 'orch', password: 'pw' });
  });

  it("the URL's credentials win (ioredis would let options override them)", () => {
    expect(redisConnectionSettings('redis://me:url-pw@h:6379', { ...none, username: 'orch', password: 'pw' })).toEqual({});
    expect(redisConnectionSettings('redis://:url-pw@h:6379', { ...none, password: 'pw' })).toEqual({});
  });

  it('rediss:// with CA and client certificate: each file is read again at every connect (rotation)', () => {
    const caFile = file('ca.pem', CERT);
    const tls = { caFile, certFile: file('c.pem', CERT), keyFile: file('c.key', KEY) };
    const s = redisConnectionSettings('rediss://h:6380', { ...none, tls });
    // What ioredis does at each connect: Object.assign into the tls.connect options.
    expect(String(Object.assign({}, s.tls).ca)).toBe(CERT);
    writeFileSync(caFile, `${CERT}\n`);
    expect(String(Object.assign({}, s.tls).ca)).toBe(`${CERT}\n`);
    expect(String(Object.assign({}, s.tls).key)).toBe(KEY);
  });

  it('TLS files with a redis:// URL are refused naming the variables', () => {
    expect(() => redisConnectionSettings('redis://h:6379', { ...none, tls: { ...none.tls, caFile: file('ca2.pem', CERT) } })).toThrow(
      /^REDIS_TLS_CA_FILE is set but REDIS_URL is not rediss:\/\//,
    );
    expect(() => redisConnectionSettings('redis://h:6379', { ...none, tls: { ...none.tls, caFile: file('ca3.pem', CERT) } }, 'REDLOCK_URLS')).toThrow(/REDLOCK_URLS is not rediss/);
  });

  it('a missing or unparsable file is a ConfigError naming the variable', () => {
    expect(() => redisConnectionSettings('rediss://h:6380', { ...none, tls: { ...none.tls, caFile: join(dir, 'nope.pem') } })).toThrow(/^REDIS_TLS_CA_FILE=".*nope.pem" cannot be read: no such file/);
    const bad = file('bad.key', 'not a key');
    expect(() => redisConnectionSettings('rediss://h:6380', { ...none, tls: { ...none.tls, certFile: file('ok.pem', CERT), keyFile: bad } })).toThrow(
      /^REDIS_TLS_KEY_FILE=".*bad.key" is not valid: expected a PEM private key/,
    );
  });
});

describe('redis sentinel settings', () => {
  const sentinel = { sentinels: [{ host: 's0', port: 26379 }, { host: 's1', port: 26380 }], masterName: 'orch', password: undefined };

  it.each([
    { name: 'no credentials', access: undefined, sentinelPassword: undefined, want: {} },
    { name: 'the data nodes\' ACL user and password', access: { ...none, username: 'orch', password: 'pw' }, sentinelPassword: undefined, want: { username: 'orch', password: 'pw' } },
    { name: 'the Sentinels\' own password', access: none, sentinelPassword: 'spw', want: { sentinelPassword: 'spw' } },
    { name: 'both', access: { ...none, password: 'pw' }, sentinelPassword: 'spw', want: { password: 'pw', sentinelPassword: 'spw' } },
  ])('$name', ({ access, sentinelPassword, want }) => {
    expect(redisSentinelSettings({ ...sentinel, password: sentinelPassword }, access)).toEqual({
      sentinels: [
        { host: 's0', port: 26379 },
        { host: 's1', port: 26380 },
      ],
      name: 'orch',
      role: 'master',
      ...want,
    });
  });

  it('TLS files mean TLS to the data nodes (read again at every connect); none, no TLS', () => {
    const caFile = file('sentinel-ca.pem', CERT);
    const s = redisSentinelSettings(sentinel, { ...none, tls: { ...none.tls, caFile } });
    expect(String(Object.assign({}, s.tls).ca)).toBe(CERT);
    expect(redisSentinelSettings(sentinel, none).tls).toBeUndefined();
  });

  it('a missing TLS file is a ConfigError naming the variable', () => {
    expect(() => redisSentinelSettings(sentinel, { ...none, tls: { ...none.tls, caFile: join(dir, 'absent.pem') } })).toThrow(/^REDIS_TLS_CA_FILE=".*absent.pem" cannot be read/);
  });
});

describe('redis cluster settings', () => {
  const cluster = { nodes: [{ host: 'r0', port: 7000 }, { host: 'r1', port: 7001 }] };

  it('the nodes, and the ACL user and password for every node', () => {
    expect(redisClusterSettings(cluster, undefined)).toEqual({ nodes: cluster.nodes, node: {} });
    expect(redisClusterSettings(cluster, { ...none, username: 'orch', password: 'pw' })).toEqual({ nodes: cluster.nodes, node: { username: 'orch', password: 'pw' } });
  });

  it('TLS files mean TLS to every node (read again at every connect); a missing one is a ConfigError naming the variable', () => {
    const caFile = file('cluster-ca.pem', CERT);
    expect(String(Object.assign({}, redisClusterSettings(cluster, { ...none, tls: { ...none.tls, caFile } }).node.tls).ca)).toBe(CERT);
    expect(redisClusterSettings(cluster, none).node.tls).toBeUndefined();
    expect(() => redisClusterSettings(cluster, { ...none, tls: { ...none.tls, caFile: join(dir, 'absent.pem') } })).toThrow(/^REDIS_TLS_CA_FILE=".*absent.pem" cannot be read/);
  });
});

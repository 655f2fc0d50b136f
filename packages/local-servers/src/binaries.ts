import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Debian package that ships each server binary. */
const DEBIAN_PACKAGE = { 'nats-server': 'nats-server', 'redis-server': 'redis-server' } as const;
export type ServerBinary = keyof typeof DEBIAN_PACKAGE;

const EXTRA_DIRS = ['/usr/sbin', '/usr/local/sbin', '/usr/bin', '/usr/local/bin'];

function lookup(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), ...EXTRA_DIRS];
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Finds a server binary: the env override (NATS_SERVER_BIN / REDIS_SERVER_BIN), then PATH and the
 * sbin folders. With `install`, installs Debian's package when running as root with apt-get;
 * otherwise throws a message that says exactly what to install.
 */
export function findServerBinary(name: ServerBinary, options: { install?: boolean; log?: (line: string) => void } = {}): string {
  const override = process.env[name === 'nats-server' ? 'NATS_SERVER_BIN' : 'REDIS_SERVER_BIN'];
  if (override !== undefined && override !== '') return override;
  const found = lookup(name);
  if (found !== undefined) return found;
  const pkg = DEBIAN_PACKAGE[name];
  const canInstall = options.install === true && process.getuid?.() === 0 && lookup('apt-get') !== undefined;
  if (canInstall) {
    options.log?.(`${name} not found: installing Debian package ${pkg} (apt-get install -y ${pkg})`);
    const update = spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
    const install = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', pkg], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    const after = lookup(name);
    if (update.status === 0 && install.status === 0 && after !== undefined) return after;
  }
  throw new Error(
    `${name} was not found on PATH or in /usr/sbin. Install it with: sudo apt-get install -y ${pkg}` +
      ` (or set ${name === 'nats-server' ? 'NATS_SERVER_BIN' : 'REDIS_SERVER_BIN'} to its path)`,
  );
}

/** The server's version line, for benchmark reports. */
export function serverVersion(name: ServerBinary): string {
  const bin = findServerBinary(name);
  const out = execFileSync(bin, ['--version'], { encoding: 'utf8' });
  return out.trim().split('\n')[0] ?? '';
}

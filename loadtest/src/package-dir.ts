import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The loadtest package folder, found from this file whether it runs from source (src/) or compiled
 * (dist/src/): the baseline and the k6 scripts are run from there.
 */
function findLoadtestDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === '@at-orchestrator/loadtest') return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the @at-orchestrator/loadtest package folder');
    dir = parent;
  }
}

export const LOADTEST_DIR = findLoadtestDir();
/** The repository root (the workspace), where `node packages/cli/dist/main.js` runs. */
export const REPO_DIR = dirname(LOADTEST_DIR);

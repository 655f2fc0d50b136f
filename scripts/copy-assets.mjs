// tsc compiles TypeScript only; Lua scripts and other runtime assets that live beside the code
// are copied from src/ to dist/ with the same relative path. Browser pages (.html, .css, and the
// plain .js of a page/ folder, which no compiler touches) are assets too.
import { cpSync, existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const ASSET = /\.(lua|json|yaml|csv|html|css)$|\/page\/[^/]+\.js$/;
const root = new URL('../packages/', import.meta.url).pathname;

function walk(dir, visit) {
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) walk(full, visit);
    else visit(full);
  }
}

let copied = 0;
for (const pkg of readdirSync(root)) {
  const src = join(root, pkg, 'src');
  if (!existsSync(src)) continue;
  walk(src, (file) => {
    if (!ASSET.test(file)) return;
    cpSync(file, join(root, pkg, 'dist', relative(src, file)));
    copied += 1;
  });
}
console.log(`copy-assets: ${copied} file(s)`);

// Summarises a V8 CPU profile (node --cpu-prof) of a worker: the share of its busy time by where the
// code lives (this project's packages, each dependency, Node's internals, native code, GC) and the
// functions with the most self time. Usage: node loadtest/scripts/profile-summary.mjs FILE.cpuprofile
import { readFileSync } from 'node:fs';

const file = process.argv[2];
if (file === undefined) {
  process.stderr.write('usage: node loadtest/scripts/profile-summary.mjs FILE.cpuprofile\n');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8'));
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const selfTime = new Map();
profile.samples.forEach((id, i) => selfTime.set(id, (selfTime.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));

/** Where a frame's code lives: a package of ours, a dependency, Node itself, or the engine. */
function place(frame) {
  if (frame.functionName === '(idle)') return 'idle';
  if (frame.functionName === '(garbage collector)') return 'garbage collector';
  if (frame.functionName === '(program)') return 'program';
  const dep = /node_modules\/\.pnpm\/((?:@[^+/]+\+)?[^@/]+)@/.exec(frame.url);
  if (dep !== null) return dep[1].replace('+', '/');
  const ours = /\/(packages\/[^/]+)\//.exec(frame.url);
  if (ours !== null) return ours[1];
  if (frame.url.startsWith('node:')) return 'node internals';
  return frame.url === '' ? 'native (writes, crypto, …)' : 'other';
}

const byPlace = new Map();
const byFunction = new Map();
let total = 0;
for (const [id, t] of selfTime) {
  const frame = nodes.get(id).callFrame;
  total += t;
  const where = place(frame);
  byPlace.set(where, (byPlace.get(where) ?? 0) + t);
  const name = `${frame.functionName || '(anonymous)'} ${where}${frame.url === '' ? '' : `:${frame.lineNumber + 1}`}`;
  byFunction.set(name, (byFunction.get(name) ?? 0) + t);
}
const busy = total - (byPlace.get('idle') ?? 0);
const pct = (t) => `${((100 * t) / busy).toFixed(1).padStart(5)} %`;
const top = (m, n) => [...m].filter(([k]) => k !== 'idle' && !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, n);
process.stdout.write(`profile ${(total / 1e6).toFixed(1)} s, busy ${(busy / 1e6).toFixed(2)} s\n\nbusy time by place:\n`);
for (const [k, t] of top(byPlace, 15)) process.stdout.write(`${pct(t)}  ${k}\n`);
process.stdout.write('\nfunctions by self time:\n');
for (const [k, t] of top(byFunction, 25)) process.stdout.write(`${pct(t)}  ${k}\n`);

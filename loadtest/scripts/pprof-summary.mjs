// Summarises Go CPU profiles of nats-server (from scripts/nats-profile.sh), side by side: CPU per
// decision spent in the broker's main stages, then the functions with the most self time.
//   node loadtest/scripts/pprof-summary.mjs [--rate DECISIONS_PER_S] A.pb.gz [B.pb.gz …]
// With --rate, figures are µs of nats-server CPU per decision (the profile's CPU time ÷ its seconds ÷
// the rate); without it, ms of CPU per second of profile. A stage counts a sample when its function is
// anywhere on the sample's stack, so stages overlap where one calls another (the store is inside the
// inbound message, for instance).
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { parseArgs } from 'node:util';
import { Profile } from 'pprof-format';

const { values, positionals } = parseArgs({ options: { rate: { type: 'string' }, top: { type: 'string', default: '15' } }, allowPositionals: true });
if (positionals.length === 0) {
  process.stderr.write('usage: node loadtest/scripts/pprof-summary.mjs [--rate DECISIONS_PER_S] A.pb.gz [B.pb.gz …]\n');
  process.exit(2);
}
const rate = values.rate === undefined ? undefined : Number(values.rate);

/** The broker's stages: a label and the function (without package) that marks it on a stack. */
const STAGES = [
  ['client reads, parses and routes a message', '(*client).processInboundClientMsg'],
  ['  JetStream stores a published message (dedup, file store, republish, PubAck)', '(*stream).processJetStreamMsg'],
  ['    of which the file store', '(*fileStore).StoreMsg'],
  ['    of which republish headers', 'genHeader'],
  ['  subject lookups (sublist cache misses)', '(*Sublist).match'],
  ['consumer hands out messages', '(*consumer).loopAndGatherMsgs'],
  ['consumer serves pull requests', '(*consumer).processNextMsgReq'],
  ['consumer processes acks', '(*consumer).processInboundAcks'],
  ['socket writes to clients', '(*client).flushOutbound'],
  ['Go garbage collector', 'runtime.gcBgMarkWorker'],
];

function load(file) {
  const buf = readFileSync(file);
  const p = Profile.decode(buf[0] === 0x1f ? gunzipSync(buf) : buf);
  const str = (i) => p.stringTable.strings[Number(i)];
  const names = new Map(p.function.map((f) => [String(f.id), str(f.name).replace(/^github\.com\/nats-io\/nats-server(\/v2)?\/server\./, '')]));
  const frames = new Map(p.location.map((l) => [String(l.id), l.line.map((ln) => names.get(String(ln.functionId)) ?? '?')]));
  const cpu = p.sampleType.findIndex((t) => str(t.type) === 'cpu');
  const seconds = Number(p.durationNanos) / 1e9;
  const self = new Map();
  const stage = new Map();
  let total = 0;
  for (const s of p.sample) {
    const ns = Number(s.value[cpu < 0 ? s.value.length - 1 : cpu]);
    total += ns;
    const stack = s.locationId.flatMap((id) => frames.get(String(id)) ?? ['?']);
    self.set(stack[0], (self.get(stack[0]) ?? 0) + ns);
    const on = new Set(stack);
    for (const [label, fn] of STAGES) if (on.has(fn)) stage.set(label, (stage.get(label) ?? 0) + ns);
  }
  return { file, seconds, total, self, stage };
}

const profiles = positionals.map(load);
/** ns of CPU in a profile → the printed unit. */
const unit = (p, ns) => (rate === undefined ? ns / 1e6 / p.seconds : ns / 1e3 / p.seconds / rate);
const fmt = (v) => v.toFixed(1).padStart(9);
const head = rate === undefined ? 'ms CPU per second of profile' : `µs of nats-server CPU per decision at ${rate}/s`;
console.log(`${head}; profiles: ${profiles.map((p, i) => `[${i + 1}] ${p.file} (${p.seconds.toFixed(0)} s)`).join(', ')}`);
console.log(`${profiles.map((_, i) => `[${i + 1}]`.padStart(9)).join('')}  stage`);
console.log(`${profiles.map((p) => fmt(unit(p, p.total))).join('')}  all of nats-server`);
for (const [label] of STAGES) console.log(`${profiles.map((p) => fmt(unit(p, p.stage.get(label) ?? 0))).join('')}  ${label}`);
const top = Number(values.top);
/** Each function's largest self time in any profile: the ranking of the table. */
const largest = new Map();
for (const p of profiles) for (const [fn, ns] of p.self) largest.set(fn, Math.max(largest.get(fn) ?? 0, unit(p, ns)));
console.log(`\n${profiles.map((_, i) => `[${i + 1}]`.padStart(9)).join('')}  self time, top ${top}`);
for (const [fn] of [...largest].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${profiles.map((p) => fmt(unit(p, p.self.get(fn) ?? 0))).join('')}  ${fn}`);
}

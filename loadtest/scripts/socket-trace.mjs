// A preload that timestamps a process's socket traffic with NATS and Redis, for the segments of a
// decision's path (scripts/latency-segments.ts): every write to and every read from the servers named
// by NATS_URL and REDIS_URL, on the machine's monotonic clock, with the load driver's corr_ids found
// in it (lt-<run>-<seq>). Not for production: it reads every buffer it sees.
//   node --import ./loadtest/scripts/socket-trace.mjs packages/cli/dist/main.js worker
// Written at exit to SOCKET_TRACE_FILE, or to <tmpdir>/socket-trace-<pid>.json (the path goes to
// stderr). At most SOCKET_TRACE_MAX records (default 2,000,000); later traffic is not recorded.
import net from 'node:net';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const portOf = (url, fallback) => {
  try {
    return Number(new URL(url).port) || fallback;
  } catch {
    return fallback;
  }
};
const natsPort = portOf(process.env.NATS_URL ?? 'nats://127.0.0.1:4222', 4222);
const redisPort = portOf(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', 6379);
const max = Number(process.env.SOCKET_TRACE_MAX ?? 2_000_000);
const file = process.env.SOCKET_TRACE_FILE ?? join(tmpdir(), `socket-trace-${process.pid}.json`);
const CORR_ID = /lt-[0-9a-f]{8}-[0-9a-z]+/g;
/** [monotonic ms, 'nw' | 'nr' | 'rw' | 'rr' (NATS or Redis, write or read), corr_ids] */
const records = [];

const now = () => Number(process.hrtime.bigint()) / 1e6;
const server = (socket) => (socket.remotePort === natsPort ? 'n' : socket.remotePort === redisPort ? 'r' : undefined);
function corrIds(chunk) {
  const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('latin1');
  return text.includes('lt-') ? [...new Set(text.match(CORR_ID))] : [];
}

const write = net.Socket.prototype.write;
net.Socket.prototype.write = function (chunk, ...rest) {
  const s = server(this);
  if (s !== undefined && records.length < max) records.push([now(), `${s}w`, corrIds(chunk)]);
  return write.call(this, chunk, ...rest);
};
const emit = net.Socket.prototype.emit;
net.Socket.prototype.emit = function (event, chunk, ...rest) {
  if (event === 'data' && records.length < max) {
    const s = server(this);
    if (s !== undefined) records.push([now(), `${s}r`, s === 'n' ? corrIds(chunk) : []]);
  }
  return emit.call(this, event, chunk, ...rest);
};
process.on('exit', () => {
  writeFileSync(file, JSON.stringify(records));
  process.stderr.write(`socket-trace: ${records.length} records in ${file}\n`);
});

import { closeSync, openSync, writeSync } from 'node:fs';

/** One measured decision as `--latency-log` writes it (one JSON object per line). */
export interface LatencyRecord {
  readonly corr_id: string;
  /** When its last required signal was sent, in ms on the machine's monotonic clock (CLOCK_MONOTONIC). */
  readonly sent_mono_ms: number;
  readonly latency_ms: number;
}

/**
 * `--latency-log FILE`: every decision measured after warm-up, with the time its last required signal
 * was sent on the machine's monotonic clock — the clock `process.hrtime` reads in every process here —
 * so that it can be laid beside timestamps another process took (scripts/socket-trace.mjs, the
 * segments of a decision's path: scripts/latency-segments.ts). Lines are written as decisions arrive,
 * synchronously (a few hundred bytes each, a few thousand a second), so nothing is held in memory.
 */
export class LatencyLog {
  private fd: number | undefined;
  /** performance.now() and hrtime read the same monotonic clock from different origins. */
  private readonly offsetMs = Number(process.hrtime.bigint()) / 1e6 - performance.now();

  constructor(readonly file: string) {
    try {
      this.fd = openSync(file, 'w');
    } catch (err) {
      throw new Error(`--latency-log=${JSON.stringify(file)} cannot be written: ${(err as Error).message}`);
    }
  }

  /** `sentMs` is the driver's performance.now() at the send. */
  record(corrId: string, sentMs: number, latencyMs: number): void {
    if (this.fd === undefined) return;
    const line: LatencyRecord = { corr_id: corrId, sent_mono_ms: round3(sentMs + this.offsetMs), latency_ms: round3(latencyMs) };
    writeSync(this.fd, `${JSON.stringify(line)}\n`);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

const round3 = (v: number): number => Math.round(v * 1000) / 1000;

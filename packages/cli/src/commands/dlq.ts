import { parseArgs } from 'node:util';
import { redactUrl } from '@at-orchestrator/contracts';
import type { NatsLink } from '@at-orchestrator/runtime';
import { listDeadLetters, redriveDeadLetters, type ListedDeadLetter } from '@at-orchestrator/worker';
import { EXIT, connectForCommand } from '../bus-connection.js';
import type { Command } from '../command.js';

type NatsConnection = NatsLink['nc'];

/** Exit codes: as the other operator commands (0 done, 1 unreachable, 2 usage, 3 refused). */
const DEFAULT_LIMIT = 1_000;

const USAGE = [
  'Usage: at-orchestrator dlq list [--reason R] [--limit N] [--json]',
  '       at-orchestrator dlq redrive <seq...>',
  '',
  'Reads the dead-letter stream (NATS_DLQ_STREAM, subject orchestrator.dlq).',
  '  list      one line per dead letter: its stream sequence, reason, original subject, corr_id, when',
  '            and why; --reason keeps one reason; --limit the newest N (default 1000); --json for scripts',
  '  redrive   publishes the original payload of each named letter again on its original subject',
  '            (after the cause is fixed); a truncated letter, or one that is not a signal (an engine',
  '            failure of a whole correlation), is refused',
  '',
  'Exit codes: 0 done, 1 NATS unreachable, 2 bad usage or configuration, 3 a letter missing or refused.',
].join('\n');

/**
 * `at-orchestrator dlq`: what the DLQ holds, by reason, and the way back for letters whose cause was
 * fixed. Reading never consumes: the letters stay in the stream (until its max_age).
 */
export const dlqCommand: Command = {
  name: 'dlq',
  summary: 'list dead letters by reason, re-drive chosen ones to their original subject',
  usage: USAGE,
  async run(argv) {
    const fail = (code: number, line: string): number => {
      process.stderr.write(`at-orchestrator dlq: ${line}\n`);
      return code;
    };
    let parsed;
    try {
      parsed = parseArgs({
        args: argv,
        allowPositionals: true,
        options: { reason: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean', default: false } },
      });
    } catch (err) {
      return fail(EXIT.usage, `${(err as Error).message}\n${USAGE}`);
    }
    const [action, ...rest] = parsed.positionals;
    if (action !== 'list' && action !== 'redrive') return fail(EXIT.usage, `expected "list" or "redrive", got ${JSON.stringify(action ?? '')}\n${USAGE}`);
    const limit = parsed.values.limit === undefined ? DEFAULT_LIMIT : Number(parsed.values.limit);
    if (!Number.isSafeInteger(limit) || limit < 1) return fail(EXIT.usage, `--limit=${JSON.stringify(parsed.values.limit)} is not valid: expected a positive whole number`);
    const seqs = rest.map(Number);
    if (action === 'list' && rest.length > 0) return fail(EXIT.usage, `list takes no arguments, got ${rest.join(' ')}`);
    if (action === 'redrive') {
      if (rest.length === 0) return fail(EXIT.usage, 'redrive needs the sequence numbers of the letters (see dlq list)');
      const bad = rest.find((r, i) => !/^\d{1,15}$/.test(r) || seqs[i]! < 1);
      if (bad !== undefined) return fail(EXIT.usage, `sequence ${JSON.stringify(bad)} is not valid: expected a stream sequence number (1, 2, …)`);
    }

    const connection = await connectForCommand('dlq', 3_000);
    if (!connection.ok) return fail(connection.code, connection.message);
    const { link } = connection;
    const nats = connection.config.nats;
    try {
      if (action === 'list') {
        const letters = await listDeadLetters(link.nc, nats.dlqStream, parsed.values.reason, limit);
        process.stdout.write(parsed.values.json === true ? `${JSON.stringify(letters, null, 2)}\n` : `${renderList(letters)}\n`);
        return EXIT.ok;
      }
      return await redrive(link.nc, nats.dlqStream, seqs, fail);
    } catch (err) {
      return fail(EXIT.unreachable, redactUrl((err as Error).message));
    } finally {
      await link.close();
    }
  },
};

function renderList(letters: ListedDeadLetter[]): string {
  if (letters.length === 0) return 'no dead letters';
  const counts = new Map<string, number>();
  for (const l of letters) counts.set(l.reason, (counts.get(l.reason) ?? 0) + 1);
  const rows = letters.map((l) => [String(l.seq), l.reason, l.subject, l.corr_id ?? '-', l.received_at, `${l.truncated ? '[truncated] ' : ''}${l.detail}`]);
  const head = ['SEQ', 'REASON', 'SUBJECT', 'CORR_ID', 'RECEIVED', 'DETAIL'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => Math.min(r[i]!.length, 48))));
  const line = (r: string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  const byReason = [...counts].map(([r, n]) => `${r}: ${n}`).join(', ');
  return [line(head), ...rows.map(line), '', `${letters.length} dead letters (${byReason})`].join('\n');
}

async function redrive(nc: NatsConnection, stream: string, seqs: number[], fail: (code: number, line: string) => number): Promise<number> {
  let code: number = EXIT.ok;
  for (const r of await redriveDeadLetters(nc, stream, seqs)) {
    if (r.ok) process.stdout.write(`redriven ${r.seq} (${r.reason}) -> ${r.subject} (stream ${r.stream} seq ${r.streamSeq})\n`);
    else code = fail(EXIT.refused, r.message);
  }
  return code;
}

import { EventEmitter } from 'node:events';
import { readFileSync, watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { ConfigError } from '@at-orchestrator/contracts';
import { RuleSet, formatOf } from './rule-set.js';
import type { RulesFormat } from './rule-set.js';
import { RulesFileError } from './rules-schema.js';

/** Reads and validates a rules file once (at construction time); throws RulesFileError. */
export function loadRulesFile(path: string, format: RulesFormat = formatOf(path)): RuleSet {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new RulesFileError(path, `cannot be read: ${(err as Error).message}`);
  }
  return RuleSet.fromText(text, path, format);
}

export interface RulesReloaded {
  readonly rules: RuleSet;
  readonly previousVersion: string;
}

export interface RulesRejected {
  /** Why the new file was refused: names the rule and field when the file is invalid. */
  readonly error: ConfigError;
  /** The rules still in force. */
  readonly keptVersion: string;
}

export type ReloadOutcome =
  | ({ readonly status: 'reloaded' } & RulesReloaded)
  | ({ readonly status: 'rejected' } & RulesRejected)
  | { readonly status: 'unchanged'; readonly version: string }
  | { readonly status: 'closed' };

interface RulesFileEvents {
  /** A changed, valid file is now in force. */
  reloaded: [RulesReloaded];
  /** A changed file could not be used (invalid, unreadable, gone): the previous rules stay in force. */
  rejected: [RulesRejected];
}

export interface RulesFileOptions {
  /** Quiet time after the last change before the file is read (editors write in several steps). Default 150 ms. */
  readonly debounceMs?: number;
  readonly format?: RulesFormat;
  /** Aborting closes the watcher. */
  readonly signal?: AbortSignal;
}

/**
 * A rules file kept in force while it changes on disk.
 *
 * The file is read and validated when this is constructed (a bad file throws: the process should not
 * start on it). start() watches the file's directory rather than the file, because editors and config
 * tools (vim, kubectl's ConfigMap symlink swap, `mv new old`) replace the file instead of writing it,
 * and a watch on the old inode would go quiet. Changes are debounced; then the file is read and
 * validated off the event loop's critical path, and either swapped in whole ('reloaded') or refused
 * with the reason while the old rules keep running ('rejected'). Reloads run one at a time, in order.
 *
 * Listeners must not throw: an exception from a listener of a reload the watcher started is rethrown
 * on the next tick, as an EventEmitter listener's would be.
 */
export class RulesFile extends EventEmitter<RulesFileEvents> {
  readonly path: string;
  private readonly format: RulesFormat;
  private readonly debounceMs: number;
  private readonly signal: AbortSignal | undefined;
  private rules: RuleSet;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private readonly onAbort = (): void => this.close();

  constructor(path: string, options: RulesFileOptions = {}) {
    super();
    this.path = resolve(path);
    this.format = options.format ?? formatOf(this.path);
    this.debounceMs = options.debounceMs ?? 150;
    this.signal = options.signal;
    this.rules = loadRulesFile(this.path, this.format);
  }

  /** The rules in force. */
  get current(): RuleSet {
    return this.rules;
  }

  /** Starts watching for changes. Idempotent. */
  start(): this {
    if (this.closed) throw new ConfigError(`rules file ${this.path}: start() after close()`);
    if (this.watcher !== undefined) return this;
    if (this.signal?.aborted === true) {
      this.close();
      return this;
    }
    const name = basename(this.path);
    this.watcher = watch(dirname(this.path), { persistent: false }, (_event, filename) => {
      if (filename === null || filename === name) this.schedule();
    });
    this.watcher.on('error', (err: Error) => {
      this.emit('rejected', {
        error: new RulesFileError(this.path, `can no longer be watched (${err.message}): the loaded rules stay in force`),
        keptVersion: this.rules.version,
      });
    });
    this.signal?.addEventListener('abort', this.onAbort, { once: true });
    return this;
  }

  /**
   * Reads the file now (e.g. on SIGHUP) and resolves with what happened. Never rejects for a bad
   * file: that is the 'rejected' outcome.
   */
  reload(): Promise<ReloadOutcome> {
    const next = this.queue.then(() => this.reloadNow());
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Stops watching. Idempotent; a reload already reading the file finishes without effect. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.watcher?.close();
    this.watcher = undefined;
    this.signal?.removeEventListener('abort', this.onAbort);
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.reload().catch((err: unknown) => {
        process.nextTick(() => {
          throw err;
        });
      });
    }, this.debounceMs);
    this.timer.unref();
  }

  private async reloadNow(): Promise<ReloadOutcome> {
    if (this.closed) return { status: 'closed' };
    let next: RuleSet;
    try {
      const text = await readFile(this.path, 'utf8');
      next = RuleSet.fromText(text, this.path, this.format);
    } catch (err) {
      if (this.closed) return { status: 'closed' };
      const error = err instanceof ConfigError ? err : new RulesFileError(this.path, `cannot be read: ${(err as Error).message}`);
      const event: RulesRejected = { error, keptVersion: this.rules.version };
      this.emit('rejected', event);
      return { status: 'rejected', ...event };
    }
    if (this.closed) return { status: 'closed' };
    if (next.version === this.rules.version) return { status: 'unchanged', version: next.version };
    const event: RulesReloaded = { rules: next, previousVersion: this.rules.version };
    this.rules = next;
    this.emit('reloaded', event);
    return { status: 'reloaded', ...event };
  }
}

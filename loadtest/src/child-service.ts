import { spawn, type ChildProcess } from 'node:child_process';

export interface ChildServiceOptions {
  readonly cwd: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Ready when a line of its output matches… */
  readonly readyLine?: RegExp;
  /** …or when this URL answers 2xx. */
  readonly readyUrl?: string;
  readonly readyTimeoutMs?: number;
}

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/**
 * A process the driver starts (the system under test), with readiness, the tail of its output for
 * error messages, and a bounded stop (SIGTERM, then SIGKILL).
 */
export class ChildService {
  private child: ChildProcess | undefined;
  private output = '';
  private exitInfo: ExitInfo | undefined;
  private stopping = false;
  /** Called when the process exits while nobody asked it to stop. */
  onUnexpectedExit: ((info: ExitInfo, tail: string) => void) | undefined;

  constructor(
    readonly label: string,
    private readonly command: string,
    private readonly args: readonly string[],
    private readonly options: ChildServiceOptions,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get exited(): ExitInfo | undefined {
    return this.exitInfo;
  }

  get commandLine(): string {
    return [this.command, ...this.args].join(' ');
  }

  /** The last lines it printed. */
  tail(lines = 20): string {
    return this.output.split('\n').slice(-lines).join('\n');
  }

  async start(): Promise<void> {
    const child = spawn(this.command, [...this.args], {
      cwd: this.options.cwd,
      env: this.options.env as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const onData = (chunk: Buffer): void => {
      this.output += chunk.toString();
      if (this.output.length > 64_000) this.output = this.output.slice(-32_000);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    const exited = new Promise<ExitInfo>((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        if (!this.stopping) this.onUnexpectedExit?.(this.exitInfo, this.tail());
        resolve(this.exitInfo);
      });
      child.once('error', (err) => {
        this.output += `\n${err.message}`;
        this.exitInfo = { code: -1, signal: null };
        resolve(this.exitInfo);
      });
    });
    const timeoutMs = this.options.readyTimeoutMs ?? 30_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.exitInfo !== undefined) {
        const info = await exited;
        throw new Error(`${this.label} (${this.commandLine}) exited with ${info.signal ?? `code ${info.code}`} before it was ready:\n${this.tail()}`);
      }
      if (this.options.readyLine !== undefined && this.options.readyLine.test(this.output)) return;
      if (this.options.readyUrl !== undefined && (await answers(this.options.readyUrl))) return;
      if (this.options.readyLine === undefined && this.options.readyUrl === undefined) return;
      if (Date.now() > deadline) {
        await this.stop(1_000);
        throw new Error(`${this.label} (${this.commandLine}) was not ready within ${timeoutMs} ms:\n${this.tail()}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGTERM, then SIGKILL after graceMs; resolves when it has exited. Idempotent. */
  async stop(graceMs = 10_000): Promise<ExitInfo | undefined> {
    const child = this.child;
    if (child === undefined) return undefined;
    if (this.exitInfo !== undefined) return this.exitInfo;
    this.stopping = true;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
    return this.exitInfo;
  }

  /** kill -9, as a crash would (fault-under-load). */
  kill9(): void {
    this.stopping = true;
    this.child?.kill('SIGKILL');
  }
}

async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

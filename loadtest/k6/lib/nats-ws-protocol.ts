/**
 * The NATS client protocol, as bytes in and bytes out, for clients that only have a WebSocket:
 * the k6 scripts (k6/websockets) and, in tests, Node's `ws`.
 *
 * No imports and no runtime APIs beyond ECMAScript: k6 has no TextEncoder, no Buffer and no
 * timers outside its own modules, so UTF-8 is done here and time is passed in by the caller.
 *
 * nats-server's WebSocket listener carries the plain protocol in binary frames. A frame may hold
 * several protocol messages, and a message (control line or payload) may be split across frames:
 * the parser therefore works on a byte stream and never assumes frame boundaries.
 *
 * Protocol reference: https://docs.nats.io/reference/reference-protocols/nats-protocol
 */

// ---------------------------------------------------------------------------------------------
// UTF-8

/** Encodes a string as UTF-8 (lone surrogates become U+FFFD, as TextEncoder does). */
export function utf8Encode(text: string): Uint8Array {
  const out = new Uint8Array(text.length * 3);
  let n = 0;
  for (let i = 0; i < text.length; i += 1) {
    let c = text.charCodeAt(i);
    if (c < 0x80) {
      out[n++] = c;
      continue;
    }
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      if (next >= 0xdc00 && next <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
        i += 1;
      } else {
        c = 0xfffd;
      }
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      c = 0xfffd;
    }
    if (c < 0x800) {
      out[n++] = 0xc0 | (c >> 6);
      out[n++] = 0x80 | (c & 0x3f);
    } else if (c < 0x10000) {
      out[n++] = 0xe0 | (c >> 12);
      out[n++] = 0x80 | ((c >> 6) & 0x3f);
      out[n++] = 0x80 | (c & 0x3f);
    } else {
      out[n++] = 0xf0 | (c >> 18);
      out[n++] = 0x80 | ((c >> 12) & 0x3f);
      out[n++] = 0x80 | ((c >> 6) & 0x3f);
      out[n++] = 0x80 | (c & 0x3f);
    }
  }
  return out.subarray(0, n);
}

/**
 * Decodes UTF-8 as the WHATWG decoder does (TextDecoder without `fatal`): each maximal invalid
 * subsequence becomes one U+FFFD.
 */
export function utf8Decode(bytes: Uint8Array, start = 0, end = bytes.length): string {
  let out = '';
  let units: number[] = [];
  let needed = 0;
  let seen = 0;
  let cp = 0;
  let lower = 0x80;
  let upper = 0xbf;
  const emit = (c: number): void => {
    if (c >= 0x10000) {
      c -= 0x10000;
      units.push(0xd800 + (c >> 10), 0xdc00 + (c & 0x3ff));
    } else {
      units.push(c);
    }
    if (units.length >= 4096) {
      out += String.fromCharCode(...units);
      units = [];
    }
  };
  for (let i = start; i < end; i += 1) {
    const b = bytes[i] as number;
    if (needed === 0) {
      if (b <= 0x7f) emit(b);
      else if (b >= 0xc2 && b <= 0xdf) {
        needed = 1;
        cp = b & 0x1f;
      } else if (b >= 0xe0 && b <= 0xef) {
        if (b === 0xe0) lower = 0xa0;
        if (b === 0xed) upper = 0x9f;
        needed = 2;
        cp = b & 0x0f;
      } else if (b >= 0xf0 && b <= 0xf4) {
        if (b === 0xf0) lower = 0x90;
        if (b === 0xf4) upper = 0x8f;
        needed = 3;
        cp = b & 0x07;
      } else emit(0xfffd);
      continue;
    }
    if (b < lower || b > upper) {
      needed = 0;
      seen = 0;
      cp = 0;
      lower = 0x80;
      upper = 0xbf;
      emit(0xfffd);
      i -= 1; // this byte starts the next sequence
      continue;
    }
    lower = 0x80;
    upper = 0xbf;
    cp = (cp << 6) | (b & 0x3f);
    seen += 1;
    if (seen === needed) {
      emit(cp);
      needed = 0;
      seen = 0;
      cp = 0;
    }
  }
  if (needed > 0) emit(0xfffd);
  return units.length > 0 ? out + String.fromCharCode(...units) : out;
}

const CR = 13;
const LF = 10;
const EMPTY = new Uint8Array(0);

function indexOfCrlf(bytes: Uint8Array, from: number): number {
  for (let i = from; i + 1 < bytes.length; i += 1) {
    if (bytes[i] === CR && bytes[i + 1] === LF) return i;
  }
  return -1;
}

// ---------------------------------------------------------------------------------------------
// Headers

/** Message headers as NATS carries them: a status line (`NATS/1.0 503 No Responders`) and fields. */
export interface NatsHeaders {
  /** Status code from the first line (100 idle heartbeat, 404, 408, 503 no responders…), if any. */
  readonly status?: number;
  readonly description?: string;
  /** Field name as sent → values, in order. */
  readonly fields: Readonly<Record<string, readonly string[]>>;
}

/** Finds a header field regardless of case. */
export function headerValue(headers: NatsHeaders | undefined, name: string): string | undefined {
  if (headers === undefined) return undefined;
  const exact = headers.fields[name];
  if (exact !== undefined) return exact[0];
  const lower = name.toLowerCase();
  for (const key of Object.keys(headers.fields)) {
    if (key.toLowerCase() === lower) return headers.fields[key]?.[0];
  }
  return undefined;
}

export function encodeHeaders(fields: Readonly<Record<string, string | readonly string[]>>): Uint8Array {
  let text = 'NATS/1.0\r\n';
  for (const name of Object.keys(fields)) {
    if (!/^[!-9;-~]+$/.test(name)) throw new NatsProtocolError(`invalid header name ${JSON.stringify(name)}`);
    const raw = fields[name] as string | readonly string[];
    const values = typeof raw === 'string' ? [raw] : raw;
    for (const value of values) {
      if (/[\r\n]/.test(value)) throw new NatsProtocolError(`header ${name} has a line break in its value`);
      text += `${name}: ${value}\r\n`;
    }
  }
  return utf8Encode(`${text}\r\n`);
}

export function parseHeaders(bytes: Uint8Array): NatsHeaders {
  const text = utf8Decode(bytes);
  const lines = text.split('\r\n');
  const first = lines[0] ?? '';
  if (!first.startsWith('NATS/1.0')) throw new NatsProtocolError(`bad header block: ${JSON.stringify(first.slice(0, 40))}`);
  const statusText = first.slice('NATS/1.0'.length).trim();
  let status: number | undefined;
  let description: string | undefined;
  if (statusText !== '') {
    const sp = statusText.indexOf(' ');
    status = Number(sp < 0 ? statusText : statusText.slice(0, sp));
    if (!Number.isInteger(status)) throw new NatsProtocolError(`bad status in header block: ${JSON.stringify(statusText)}`);
    if (sp >= 0) description = statusText.slice(sp + 1).trim();
  }
  const fields: Record<string, string[]> = {};
  for (let i = 1; i < lines.length; i += 1) {
    const line = lines[i] as string;
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new NatsProtocolError(`bad header line: ${JSON.stringify(line.slice(0, 40))}`);
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    (fields[name] ??= []).push(value);
  }
  return { ...(status === undefined ? {} : { status }), ...(description === undefined ? {} : { description }), fields };
}

// ---------------------------------------------------------------------------------------------
// Parser: server → client

export class NatsProtocolError extends Error {
  readonly code = 'NATS_PROTOCOL';
  constructor(message: string) {
    super(message);
    this.name = 'NatsProtocolError';
  }
}

export interface NatsMessage {
  readonly subject: string;
  readonly sid: number;
  readonly reply?: string;
  readonly headers?: NatsHeaders;
  readonly data: Uint8Array;
}

export type ServerOp =
  | { readonly op: 'INFO'; readonly info: ServerInfo }
  | ({ readonly op: 'MSG' } & NatsMessage)
  | { readonly op: 'PING' }
  | { readonly op: 'PONG' }
  | { readonly op: 'OK' }
  | { readonly op: 'ERR'; readonly message: string };

export interface ServerInfo {
  readonly server_id?: string;
  readonly version?: string;
  readonly headers?: boolean;
  readonly max_payload?: number;
  readonly [key: string]: unknown;
}

/** Longest control line accepted before giving up on a stream (nats-server's own limit is 4 KiB). */
const MAX_CONTROL_LINE = 64 * 1024;

interface PendingMessage {
  readonly subject: string;
  readonly sid: number;
  readonly reply: string | undefined;
  readonly headerBytes: number;
  readonly totalBytes: number;
}

/**
 * Turns a byte stream from the server into protocol operations. Feed it every frame as it comes;
 * it keeps what it cannot parse yet (a partial line or payload) for the next frame.
 */
export class NatsProtocolParser {
  /** Bytes received but not parsed yet, in arrival order (copies: callers may reuse their buffers). */
  private held: Uint8Array[] = [];
  private heldBytes = 0;
  private pending: PendingMessage | undefined;

  /** Bytes held back, waiting for the rest of a message. */
  get buffered(): number {
    return this.heldBytes;
  }

  push(chunk: Uint8Array, emit: (op: ServerOp) => void): void {
    if (chunk.length === 0) return;
    // A large payload arriving in many small frames is joined once, when it is complete.
    if (this.pending !== undefined && this.heldBytes + chunk.length < this.pending.totalBytes + 2) {
      this.held.push(chunk.slice());
      this.heldBytes += chunk.length;
      return;
    }
    let data: Uint8Array;
    if (this.held.length === 0) {
      data = chunk;
    } else {
      data = new Uint8Array(this.heldBytes + chunk.length);
      let at = 0;
      for (const part of this.held) {
        data.set(part, at);
        at += part.length;
      }
      data.set(chunk, at);
    }
    this.held = [];
    this.heldBytes = 0;
    let pos = 0;
    for (;;) {
      const pending = this.pending;
      if (pending !== undefined) {
        const need = pending.totalBytes + 2;
        if (data.length - pos < need) break;
        const end = pos + pending.totalBytes;
        if (data[end] !== CR || data[end + 1] !== LF) {
          throw new NatsProtocolError(`payload of ${pending.subject} is not followed by CRLF`);
        }
        const headers = pending.headerBytes > 0 ? parseHeaders(data.subarray(pos, pos + pending.headerBytes)) : undefined;
        const message: { op: 'MSG' } & NatsMessage = {
          op: 'MSG',
          subject: pending.subject,
          sid: pending.sid,
          ...(pending.reply === undefined ? {} : { reply: pending.reply }),
          ...(headers === undefined ? {} : { headers }),
          // A copy: the caller's frame buffer may be reused after push() returns.
          data: data.slice(pos + pending.headerBytes, end),
        };
        this.pending = undefined;
        pos = end + 2;
        emit(message);
        continue;
      }
      const eol = indexOfCrlf(data, pos);
      if (eol < 0) {
        if (data.length - pos > MAX_CONTROL_LINE) throw new NatsProtocolError('control line longer than 64 KiB');
        break;
      }
      const line = utf8Decode(data, pos, eol);
      pos = eol + 2;
      const op = this.controlLine(line);
      if (op !== undefined) emit(op);
    }
    if (pos < data.length) {
      this.held = [data.slice(pos)];
      this.heldBytes = data.length - pos;
    }
  }

  private controlLine(line: string): ServerOp | undefined {
    const space = line.search(/[ \t]/);
    const verb = (space < 0 ? line : line.slice(0, space)).toUpperCase();
    const args = space < 0 ? '' : line.slice(space + 1).trim();
    switch (verb) {
      case 'MSG': {
        const parts = args.split(/[ \t]+/);
        if (parts.length !== 3 && parts.length !== 4) throw new NatsProtocolError(`bad MSG line: ${line}`);
        const total = toSize(parts[parts.length - 1], line);
        this.pending = {
          subject: parts[0] as string,
          sid: toSize(parts[1], line),
          reply: parts.length === 4 ? parts[2] : undefined,
          headerBytes: 0,
          totalBytes: total,
        };
        return undefined;
      }
      case 'HMSG': {
        const parts = args.split(/[ \t]+/);
        if (parts.length !== 4 && parts.length !== 5) throw new NatsProtocolError(`bad HMSG line: ${line}`);
        const total = toSize(parts[parts.length - 1], line);
        const headerBytes = toSize(parts[parts.length - 2], line);
        if (headerBytes > total) throw new NatsProtocolError(`bad HMSG line (header bytes > total): ${line}`);
        this.pending = {
          subject: parts[0] as string,
          sid: toSize(parts[1], line),
          reply: parts.length === 5 ? parts[2] : undefined,
          headerBytes,
          totalBytes: total,
        };
        return undefined;
      }
      case 'PING':
        return { op: 'PING' };
      case 'PONG':
        return { op: 'PONG' };
      case '+OK':
        return { op: 'OK' };
      case '-ERR':
        return { op: 'ERR', message: args.replace(/^'(.*)'$/, '$1') };
      case 'INFO': {
        let info: unknown;
        try {
          info = JSON.parse(args);
        } catch {
          throw new NatsProtocolError(`bad INFO: ${args.slice(0, 80)}`);
        }
        return { op: 'INFO', info: info as ServerInfo };
      }
      case '':
        return undefined;
      default:
        throw new NatsProtocolError(`unknown protocol operation: ${line.slice(0, 80)}`);
    }
  }
}

function toSize(text: string | undefined, line: string): number {
  if (text === undefined || !/^\d+$/.test(text)) throw new NatsProtocolError(`bad number in: ${line}`);
  return Number(text);
}

// ---------------------------------------------------------------------------------------------
// Encoder: client → server

export interface ConnectOptions {
  readonly name?: string;
  readonly user?: string;
  readonly pass?: string;
  readonly auth_token?: string;
  /** Receive our own publications on our subscriptions (NATS default true). */
  readonly echo?: boolean;
}

function withPayload(line: string, head: Uint8Array, payload: Uint8Array): Uint8Array {
  const lineBytes = utf8Encode(line);
  const out = new Uint8Array(lineBytes.length + head.length + payload.length + 2);
  out.set(lineBytes, 0);
  out.set(head, lineBytes.length);
  out.set(payload, lineBytes.length + head.length);
  out[out.length - 2] = CR;
  out[out.length - 1] = LF;
  return out;
}

function checkToken(kind: string, value: string): string {
  if (value === '' || /[\s]/.test(value)) throw new NatsProtocolError(`invalid ${kind}: ${JSON.stringify(value)}`);
  return value;
}

const asBytes = (payload: Uint8Array | string): Uint8Array => (typeof payload === 'string' ? utf8Encode(payload) : payload);

export const encode = {
  connect(options: ConnectOptions = {}): Uint8Array {
    const body = {
      verbose: false,
      pedantic: false,
      tls_required: false,
      lang: 'nats-ws-protocol.ts',
      version: '0.1.0',
      protocol: 1,
      headers: true,
      // Publishing to a subject nobody listens on (e.g. no stream) answers a request with 503 at once.
      no_responders: true,
      echo: options.echo ?? true,
      ...(options.name === undefined ? {} : { name: options.name }),
      ...(options.user === undefined ? {} : { user: options.user }),
      ...(options.pass === undefined ? {} : { pass: options.pass }),
      ...(options.auth_token === undefined ? {} : { auth_token: options.auth_token }),
    };
    return utf8Encode(`CONNECT ${JSON.stringify(body)}\r\n`);
  },
  ping(): Uint8Array {
    return utf8Encode('PING\r\n');
  },
  pong(): Uint8Array {
    return utf8Encode('PONG\r\n');
  },
  sub(subject: string, sid: number, queue?: string): Uint8Array {
    const q = queue === undefined ? '' : ` ${checkToken('queue group', queue)}`;
    return utf8Encode(`SUB ${checkToken('subject', subject)}${q} ${sid}\r\n`);
  },
  unsub(sid: number, maxMessages?: number): Uint8Array {
    return utf8Encode(maxMessages === undefined ? `UNSUB ${sid}\r\n` : `UNSUB ${sid} ${maxMessages}\r\n`);
  },
  pub(subject: string, payload: Uint8Array | string, reply?: string): Uint8Array {
    const data = asBytes(payload);
    const r = reply === undefined ? '' : ` ${checkToken('reply subject', reply)}`;
    return withPayload(`PUB ${checkToken('subject', subject)}${r} ${data.length}\r\n`, EMPTY, data);
  },
  hpub(
    subject: string,
    headers: Readonly<Record<string, string | readonly string[]>>,
    payload: Uint8Array | string,
    reply?: string,
  ): Uint8Array {
    const data = asBytes(payload);
    const head = encodeHeaders(headers);
    const r = reply === undefined ? '' : ` ${checkToken('reply subject', reply)}`;
    return withPayload(`HPUB ${checkToken('subject', subject)}${r} ${head.length} ${head.length + data.length}\r\n`, head, data);
  },
};

// ---------------------------------------------------------------------------------------------
// Session: a minimal client over any byte transport

export interface NatsTransport {
  send(bytes: Uint8Array): void;
  close(): void;
}

export type PubAck =
  | { readonly ok: true; readonly stream: string; readonly seq: number; readonly duplicate: boolean }
  | { readonly ok: false; readonly error: string };

export interface SessionOptions extends ConnectOptions {
  /** Prefix of reply subjects for PubAcks; a random `_INBOX.<id>` by default. */
  readonly inboxPrefix?: string;
  /** Called once the server answered the first PING after CONNECT. */
  readonly onConnect?: (info: ServerInfo) => void;
  /** Protocol errors, -ERR from the server, failures of a subscription handler. */
  readonly onError?: (error: Error) => void;
  /** Source of randomness for the inbox prefix (k6 and tests may pass a seeded one). */
  readonly random?: () => number;
}

export type SessionState = 'awaiting_info' | 'connecting' | 'connected' | 'closed';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export function randomToken(length: number, random: () => number = Math.random): string {
  let out = '';
  for (let i = 0; i < length; i += 1) out += ALPHABET[Math.floor(random() * ALPHABET.length) % ALPHABET.length];
  return out;
}

interface PendingAck {
  readonly sentAtMs: number;
  readonly done: (ack: PubAck) => void;
}

/**
 * One NATS connection's protocol state: handshake, subscriptions, PING/PONG, and JetStream
 * publishes with their PubAcks. Transport-agnostic and timer-free: whoever owns the WebSocket
 * calls receive() for every frame and expirePubAcks() now and then.
 */
export class NatsSession {
  private readonly parser = new NatsProtocolParser();
  private readonly handlers = new Map<number, (message: NatsMessage) => void>();
  private readonly pongWaiters: Array<() => void> = [];
  private readonly acks = new Map<string, PendingAck>();
  private readonly inboxPrefix: string;
  private nextSid = 1;
  private nextAck = 1;
  private ackSid: number | undefined;
  private stateValue: SessionState = 'awaiting_info';
  info: ServerInfo | undefined;

  constructor(
    private readonly transport: NatsTransport,
    private readonly options: SessionOptions = {},
  ) {
    this.inboxPrefix = options.inboxPrefix ?? `_INBOX.${randomToken(22, options.random)}`;
  }

  get state(): SessionState {
    return this.stateValue;
  }

  /** PubAcks still awaited. */
  get pendingAcks(): number {
    return this.acks.size;
  }

  /** Feeds bytes received from the server (any framing). */
  receive(bytes: Uint8Array): void {
    if (this.stateValue === 'closed') return;
    try {
      this.parser.push(bytes, (op) => this.dispatch(op));
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)));
    }
  }

  subscribe(subject: string, handler: (message: NatsMessage) => void, queue?: string): number {
    this.requireOpen();
    const sid = this.nextSid++;
    this.handlers.set(sid, handler);
    this.transport.send(encode.sub(subject, sid, queue));
    return sid;
  }

  unsubscribe(sid: number, maxMessages?: number): void {
    if (maxMessages === undefined) this.handlers.delete(sid);
    if (this.stateValue !== 'closed') this.transport.send(encode.unsub(sid, maxMessages));
  }

  publish(
    subject: string,
    payload: Uint8Array | string,
    options: { reply?: string; headers?: Readonly<Record<string, string | readonly string[]>> } = {},
  ): void {
    this.requireOpen();
    this.transport.send(
      options.headers === undefined
        ? encode.pub(subject, payload, options.reply)
        : encode.hpub(subject, options.headers, payload, options.reply),
    );
  }

  /**
   * Publishes to a subject a JetStream stream captures and calls `done` with the stream's PubAck
   * (or the error: no stream, a stream error, the connection closing, expiry).
   */
  jetstreamPublish(
    subject: string,
    payload: Uint8Array | string,
    options: { msgId?: string; headers?: Readonly<Record<string, string>>; nowMs: number },
    done: (ack: PubAck) => void,
  ): void {
    this.requireOpen();
    if (this.ackSid === undefined) {
      this.ackSid = this.subscribe(`${this.inboxPrefix}.*`, (m) => this.onAck(m));
    }
    const token = String(this.nextAck++);
    this.acks.set(token, { sentAtMs: options.nowMs, done });
    const headers: Record<string, string> = { ...(options.headers ?? {}) };
    if (options.msgId !== undefined) headers['Nats-Msg-Id'] = options.msgId;
    this.publish(subject, payload, {
      reply: `${this.inboxPrefix}.${token}`,
      ...(Object.keys(headers).length > 0 ? { headers } : {}),
    });
  }

  /** Fails PubAcks awaited longer than `timeoutMs`; returns how many. */
  expirePubAcks(nowMs: number, timeoutMs: number): number {
    let expired = 0;
    for (const [token, pending] of this.acks) {
      if (nowMs - pending.sentAtMs < timeoutMs) continue;
      this.acks.delete(token);
      expired += 1;
      pending.done({ ok: false, error: `no PubAck within ${timeoutMs} ms` });
    }
    return expired;
  }

  /** Sends PING; `done` runs when the server's PONG arrives (everything sent before is processed). */
  flush(done: () => void): void {
    this.requireOpen();
    this.pongWaiters.push(done);
    this.transport.send(encode.ping());
  }

  /** Closes the transport; awaited PubAcks fail. Idempotent. */
  close(): void {
    if (this.stateValue === 'closed') return;
    this.stateValue = 'closed';
    this.handlers.clear();
    this.pongWaiters.length = 0;
    for (const pending of this.acks.values()) pending.done({ ok: false, error: 'connection closed' });
    this.acks.clear();
    this.transport.close();
  }

  private requireOpen(): void {
    if (this.stateValue === 'closed') throw new NatsProtocolError('the NATS session is closed');
    if (this.stateValue === 'awaiting_info') throw new NatsProtocolError('the NATS session has not received INFO yet');
  }

  private dispatch(op: ServerOp): void {
    switch (op.op) {
      case 'INFO':
        this.info = op.info;
        if (this.stateValue === 'awaiting_info') {
          this.stateValue = 'connecting';
          this.transport.send(encode.connect(this.options));
          this.pongWaiters.push(() => {
            this.stateValue = 'connected';
            this.options.onConnect?.(op.info);
          });
          this.transport.send(encode.ping());
        }
        return;
      case 'PING':
        this.transport.send(encode.pong());
        return;
      case 'PONG':
        this.pongWaiters.shift()?.();
        return;
      case 'OK':
        return;
      case 'ERR':
        this.options.onError?.(new Error(`nats-server: ${op.message}`));
        return;
      case 'MSG': {
        const handler = this.handlers.get(op.sid);
        if (handler === undefined) return;
        try {
          handler(op);
        } catch (err) {
          this.options.onError?.(err instanceof Error ? err : new Error(String(err)));
        }
        return;
      }
    }
  }

  private onAck(message: NatsMessage): void {
    const token = message.subject.slice(this.inboxPrefix.length + 1);
    const pending = this.acks.get(token);
    if (pending === undefined) return;
    this.acks.delete(token);
    pending.done(parsePubAck(message));
  }

  private fail(error: Error): void {
    this.options.onError?.(error);
    this.close();
  }
}

/** Reads a JetStream PubAck reply: `{stream, seq, duplicate?}`, `{error: {code, description}}` or a 503. */
export function parsePubAck(message: NatsMessage): PubAck {
  const status = message.headers?.status;
  if (status === 503) return { ok: false, error: 'no responders: no stream captures this subject' };
  if (status !== undefined && status >= 400) {
    return { ok: false, error: `status ${status}${message.headers?.description ? ` ${message.headers.description}` : ''}` };
  }
  let body: unknown;
  try {
    body = JSON.parse(utf8Decode(message.data));
  } catch {
    return { ok: false, error: 'PubAck is not JSON' };
  }
  const ack = body as { stream?: unknown; seq?: unknown; duplicate?: unknown; error?: { code?: unknown; description?: unknown } };
  if (ack.error !== undefined) {
    return { ok: false, error: `jetstream ${String(ack.error.code)}: ${String(ack.error.description)}` };
  }
  if (typeof ack.stream !== 'string' || typeof ack.seq !== 'number') return { ok: false, error: 'PubAck without stream/seq' };
  return { ok: true, stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate === true };
}

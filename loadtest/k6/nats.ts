/**
 * A NATS connection for k6: k6/websockets carries the bytes, lib/nats-ws-protocol.ts speaks NATS.
 * nats-server sends binary frames; text frames are accepted too.
 */
import { WebSocket } from 'k6/websockets';
import { NatsSession, utf8Encode, type SessionOptions } from './lib/nats-ws-protocol.ts';

export interface OpenOptions extends SessionOptions {
  /** Runs once CONNECT was answered: subscribe and publish from here. */
  readonly onReady: (session: NatsSession) => void;
  readonly onClosed?: () => void;
}

export function openNats(url: string, options: OpenOptions): NatsSession {
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  const session: NatsSession = new NatsSession(
    {
      send: (bytes) => ws.send(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer),
      // An explicit 1000: without a code, nats-server 2.9 answers with the reserved 1005 on the wire.
      close: () => ws.close(1000),
    },
    { ...options, onConnect: () => options.onReady(session) },
  );
  ws.onmessage = (event) => {
    const data = event?.data;
    if (data instanceof ArrayBuffer) session.receive(new Uint8Array(data));
    else if (typeof data === 'string') session.receive(utf8Encode(data));
  };
  ws.onerror = (event) => options.onError?.(new Error(`websocket: ${event?.error ?? 'error'}`));
  ws.onclose = () => {
    session.close();
    options.onClosed?.();
  };
  return session;
}

import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalServer, freePort, startOnFreePorts } from './servers.js';

/** A node process that listens on its port and says so: it fails the way a server does when the port is taken. */
class Listener extends LocalServer {
  constructor(port: number) {
    super(process.execPath, port, { startTimeoutMs: 10_000 }, /listening/);
  }

  protected args(): string[] {
    return ['-e', `require('node:net').createServer().listen(${this.port}, '127.0.0.1', () => console.log('listening'))`];
  }

  get url(): string {
    return `tcp://127.0.0.1:${this.port}`;
  }
}

let taken: Server;
let takenPort: number;

beforeAll(async () => {
  takenPort = await freePort();
  taken = createServer();
  await new Promise<void>((resolve) => taken.listen(takenPort, '127.0.0.1', resolve));
});
afterAll(() => taken?.close());

describe('startOnFreePorts', () => {
  it('tries new ports when the one it was given was taken before the server could bind it', async () => {
    const ports: number[] = [];
    const server = await startOnFreePorts(async () => {
      const port = ports.length === 0 ? takenPort : await freePort();
      ports.push(port);
      return new Listener(port);
    });
    try {
      expect(ports).toHaveLength(2);
      expect(server.port).toBe(ports[1]);
      expect(server.running).toBe(true);
    } finally {
      await server.dispose();
    }
  });

  it('gives up after three taken ports, with the server\'s own words', async () => {
    let made = 0;
    await expect(startOnFreePorts(async () => (made++, new Listener(takenPort)))).rejects.toThrow(/address already in use/i);
    expect(made).toBe(3);
  });
});

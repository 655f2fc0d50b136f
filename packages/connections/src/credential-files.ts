import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fromSeed, type KeyPair } from '@nats-io/nkeys';
import { ConfigError } from '@at-orchestrator/contracts';

/**
 * Reading and checking the files that hold connection credentials (certificates, keys, NKey seeds,
 * .creds). Each check names the variable the path came from and never prints the file's content.
 */

export type CredentialFileKind = 'certificate' | 'private key' | 'nkey seed' | 'creds';

/** What a parsed .creds file holds: the user JWT and the key pair of its NKey seed. */
export interface ParsedCreds {
  readonly jwt: string;
  readonly keyPair: KeyPair;
}

// Two armoured blocks, as nsc writes them: the user JWT, then the NKey seed.
const CREDS_BLOCK = /-{3,}[^\n]*-{3,}\r?\n\s*([^\s-][^\n]*?)\s*\r?\n\s*-{3,}[^\n]*-{3,}/g;

/** Reads a file named by a variable: a ConfigError naming the variable when it cannot be read. */
export function readCredentialFile(variable: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'a directory, not a file' : (code ?? 'unreadable');
    throw new ConfigError(`${variable}=${JSON.stringify(path)} cannot be read: ${why}`);
  }
}

/** Parses a seed file (the "SU…" text of an NKey seed, whitespace around it allowed). */
export function parseNkeySeed(content: Uint8Array): KeyPair {
  const text = Buffer.from(content).toString('utf8').trim();
  return fromSeed(new TextEncoder().encode(text));
}

/** Parses a .creds file: the JWT block then the seed block. Throws a plain Error on a bad file. */
export function parseCreds(content: Uint8Array): ParsedCreds {
  const text = Buffer.from(content).toString('utf8');
  const blocks = [...text.matchAll(CREDS_BLOCK)].map((m) => m[1]!.trim());
  const [jwt, seed] = blocks;
  if (jwt === undefined || seed === undefined) throw new Error('expected a JWT block and an NKey seed block');
  if (jwt.split('.').length !== 3) throw new Error('the first block is not a JWT');
  return { jwt, keyPair: fromSeed(new TextEncoder().encode(seed)) };
}

const PARSERS: Record<CredentialFileKind, (content: Buffer) => unknown> = {
  certificate: (content) => new X509Certificate(content),
  'private key': (content) => createPrivateKey(content),
  'nkey seed': parseNkeySeed,
  creds: parseCreds,
};

const EXPECTED: Record<CredentialFileKind, string> = {
  certificate: 'a PEM certificate',
  'private key': 'a PEM private key (unencrypted)',
  'nkey seed': 'an NKey seed (a line starting with S, as nsc or nk write it)',
  creds: 'a .creds file (a user JWT block and an NKey seed block, as nsc writes it)',
};

/**
 * Checks at start that the file exists, is readable and parses as the kind it should be; returns
 * its content. The ConfigError names the variable and the path, never the content.
 */
export function checkCredentialFile(variable: string, path: string, kind: CredentialFileKind): Buffer {
  const content = readCredentialFile(variable, path);
  try {
    PARSERS[kind](content);
  } catch {
    throw new ConfigError(`${variable}=${JSON.stringify(path)} is not valid: expected ${EXPECTED[kind]}`);
  }
  return content;
}

/**
 * A file read again on every use (each reconnect), so that a rotated file is picked up without a
 * restart. A file that cannot be read or parsed at that moment (half written during a rotation) gives
 * the last good content instead, and `onStale` is told once per failing streak.
 */
export class RereadFile<T> {
  private last: T;
  private failing = false;

  constructor(
    readonly variable: string,
    private readonly path: string,
    private readonly parse: (content: Buffer) => T,
    initial: T,
    private readonly onStale: (variable: string, err: unknown) => void,
  ) {
    this.last = initial;
  }

  current(): T {
    try {
      this.last = this.parse(readFileSync(this.path));
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.onStale(this.variable, err);
      this.failing = true;
    }
    return this.last;
  }
}

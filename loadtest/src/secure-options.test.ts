import { describe, expect, it } from 'vitest';
import { parseLoadOptions, UsageError } from './options.js';

describe('--secure', () => {
  it('private servers with TLS and credentials, for the worker target', () => {
    expect(parseLoadOptions(['--secure', '--target', 'worker'], {})).toMatchObject({ secure: true, servers: 'private', target: 'worker' });
    expect(parseLoadOptions(['--target', 'worker'], {})).toMatchObject({ secure: false });
  });

  it('refused with given servers, the seed baseline or the echo (they connect without credentials)', () => {
    expect(() => parseLoadOptions(['--secure', '--servers', 'given', '--target', 'worker'], {})).toThrow(UsageError);
    expect(() => parseLoadOptions(['--secure', '--target', 'baseline'], {})).toThrow(/--secure needs --servers private and --target worker or none/);
    expect(() => parseLoadOptions(['--secure', '--target', 'echo'], {})).toThrow(UsageError);
  });
});

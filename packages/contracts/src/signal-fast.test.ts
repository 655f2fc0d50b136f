import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MomentumSignal, OtherSignal, RiskSignal, matchesSignalSchema, parseSignal } from './signal.js';

// parseSignal answers a valid signal from a hand-written check (matchesSignalSchema) and leaves
// every refusal to the zod schemas. These tests hold the check to the schemas: it must accept
// exactly what they accept, and what parseSignal then returns must equal what zod would have
// returned. The generators start from valid signals and break them one or two fields at a time, so
// that most cases sit on the boundary between the two answers.

const encoder = new TextEncoder();
const BIG = 1024 * 1024;

/** What zod says about a parsed payload, through the schema parseSignal picks for it. */
function zodVerdict(parsed: Record<string, unknown>): ReturnType<typeof OtherSignal.safeParse> {
  const schema = parsed.agent_name === 'momentum' ? MomentumSignal : parsed.agent_name === 'risk' ? RiskSignal : OtherSignal;
  return schema.safeParse(parsed);
}

// JSON.stringify cannot write Infinity, -0 or a literal that rounds, but a payload can carry
// 1e400, -0 or 0.99999999999999999: a generated value `numberToken(t)` is written as the bare token t.
const TOKEN_MARK = '\u0000num:';
const numberToken = (token: string): string => `${TOKEN_MARK}${token}\u0000`;
const TOKEN_IN_TEXT = /"\\u0000num:([^"\\]+)\\u0000"/g;
const toPayload = (value: unknown): string => JSON.stringify(value).replace(TOKEN_IN_TEXT, '$1');

const printableChar = fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c));
const printable = (minLength: number, maxLength: number): fc.Arbitrary<string> => fc.string({ unit: printableChar, minLength, maxLength });
const astral = fc.integer({ min: 0x10000, max: 0x10ffff }).map((c) => String.fromCodePoint(c));
const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
/** Strings around the 64 code point bound: astral characters are two UTF-16 units but one code point. */
const aroundSixtyFour = fc.oneof(
  fc.string({ unit: fc.oneof(printableChar, astral), minLength: 60, maxLength: 68 }),
  fc.string({ unit: fc.oneof(printableChar, astral, loneSurrogate), minLength: 30, maxLength: 70 }),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 70 }),
);

const validCorrId = fc.oneof(printable(1, 40), printable(120, 128));
// Any other agent: 'momentum' and 'risk' would pick their own schemas.
const validAgentName = fc.stringMatching(/^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$/).filter((name) => name !== 'momentum' && name !== 'risk');
const validInstrument = fc.oneof(fc.constantFrom('EQ:AAPL', 'CRYPTO:BTC-USD', 'x'), fc.string({ unit: 'binary', minLength: 1, maxLength: 64 }));
const unitInterval = fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), fc.constantFrom(0, 1, numberToken('-0'), numberToken('1e-400'), numberToken('1.00000000000000001')));
const finite = fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer(), fc.constant(numberToken('-0')));
const nonNegative = fc.oneof(fc.double({ min: 0, noNaN: true, noDefaultInfinity: true }), fc.nat(), fc.constant(numberToken('-0')));
const DECLARED = new Set(['corr_id', 'agent_name', 'instrument', 'timestamp', 'analysis', 'momentum_strength', 'confidence', 'trend_direction', 'risk_level', 'position_sizing', 'recommended_size']);
/** Keys every object may carry besides its own: unknown fields, and names that mean something to JavaScript. */
const extraKeys = fc.dictionary(
  fc.oneof(fc.string().filter((k) => !DECLARED.has(k)), fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf')),
  fc.jsonValue(),
  { maxKeys: 3 },
);

const momentumAnalysis = fc.record({ momentum_strength: finite, confidence: unitInterval, trend_direction: fc.string({ minLength: 1 }) });
const riskAnalysis = fc.record({
  risk_level: fc.constantFrom('low', 'medium', 'high', 'blocked'),
  position_sizing: fc.tuple(fc.record({ recommended_size: nonNegative }), extraKeys).map(([own, extra]) => ({ ...extra, ...own })),
});
const otherAnalysis = fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('__proto__', 'constructor')), fc.jsonValue(), { maxKeys: 4 });

/** A valid signal of each kind: the envelope's optional fields present or not, extra keys anywhere. */
const validSignal = fc
  .tuple(
    fc.oneof(
      fc.record({ agent_name: fc.constant('momentum'), analysis: fc.tuple(momentumAnalysis, extraKeys).map(([own, extra]) => ({ ...extra, ...own })) }),
      fc.record({ agent_name: fc.constant('risk'), analysis: fc.tuple(riskAnalysis, extraKeys).map(([own, extra]) => ({ ...extra, ...own })) }),
      fc.record({ agent_name: validAgentName, analysis: otherAnalysis }),
    ),
    fc.record({ corr_id: validCorrId, instrument: validInstrument, timestamp: fc.string() }, { requiredKeys: ['corr_id'] }),
    extraKeys,
  )
  .map(([agent, envelope, extra]) => ({ ...extra, ...envelope, ...agent }) as Record<string, unknown>);

/** Where a mutation lands: every field any of the three schemas looks at. */
const PATHS: readonly (readonly string[])[] = [
  ['corr_id'],
  ['agent_name'],
  ['instrument'],
  ['timestamp'],
  ['analysis'],
  ['analysis', 'momentum_strength'],
  ['analysis', 'confidence'],
  ['analysis', 'trend_direction'],
  ['analysis', 'risk_level'],
  ['analysis', 'position_sizing'],
  ['analysis', 'position_sizing', 'recommended_size'],
];
const REMOVE = Symbol('remove');

/** Values on either side of some bound of some field, each tried on every field in PATHS. */
const BOUNDARY_VALUES: readonly unknown[] = [
  REMOVE, null, true, 0, 1, -1, 2, 0.5, -0.0001, 1.0001, '', ' ', '1', [], {}, [1, 2], { a: 1 },
  'momentum', 'risk', 'Momentum', 'low', 'medium', 'high', 'blocked', 'LOW', 'extreme', 'up',
  ...['1e400', '-1e400', '-0', '1e-400', '-1e-400', '0.99999999999999999', '1.00000000000000001', '1e308'].map(numberToken),
  'has space', 'tab\there', 'é', 'ok\n', '\u007f', 'bad name!', '_lead', '-lead', 'a'.repeat(64), 'a'.repeat(65),
  'c'.repeat(128), 'c'.repeat(129), '\u{1F600}'.repeat(64), '\u{1F600}'.repeat(65), 'x'.repeat(63) + '\ud83d', '\ud83d'.repeat(65),
];

/** What a field becomes in the random runs: the values above, and anything JSON can hold. */
const badValue: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: fc.constantFrom(...BOUNDARY_VALUES), weight: 4 },
  { arbitrary: fc.jsonValue(), weight: 1 },
  { arbitrary: fc.double(), weight: 1 },
  { arbitrary: fc.oneof(printable(126, 130), fc.string({ minLength: 1, maxLength: 12 }), aroundSixtyFour), weight: 2 },
  { arbitrary: fc.oneof(fc.array(fc.jsonValue(), { maxLength: 3 }), fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 2 })), weight: 1 },
);

function mutate(signal: Record<string, unknown>, path: readonly string[], value: unknown): Record<string, unknown> {
  // Through JSON, as a payload would: an own __proto__ key stays an own key.
  const copy = JSON.parse(JSON.stringify(signal)) as Record<string, unknown>;
  let parent: unknown = copy;
  for (const key of path.slice(0, -1)) {
    parent = (parent as Record<string, unknown>)[key];
    if (typeof parent !== 'object' || parent === null) return copy;
  }
  const last = path[path.length - 1]!;
  if (value === REMOVE) Reflect.deleteProperty(parent as object, last);
  else Object.defineProperty(parent, last, { value, enumerable: true, writable: true, configurable: true });
  return copy;
}

const nearValidSignal = fc
  .tuple(validSignal, fc.array(fc.tuple(fc.constantFrom(...PATHS), badValue), { maxLength: 2 }))
  .map(([signal, mutations]) => mutations.reduce((s, [path, value]) => mutate(s, path, value), signal));

/** Asserts that the check and parseSignal agree with zod on this signal; returns zod's verdict. */
function expectSameAsZod(signal: Record<string, unknown>): boolean {
  const text = toPayload(signal);
  const parsed = JSON.parse(text) as Record<string, unknown>;
  const zod = zodVerdict(parsed);
  expect(matchesSignalSchema(parsed), text).toBe(zod.success);
  const result = parseSignal(encoder.encode(text), BIG);
  expect(result.ok, text).toBe(zod.success);
  // toEqual, not toStrictEqual: an own "constructor" key (a plain field in a payload) is taken for
  // the class by the strict form, and the two sides hold two parses of the same text.
  if (result.ok && zod.success) expect(result.signal, text).toEqual(zod.data);
  return zod.success;
}

const BASES: readonly Record<string, unknown>[] = [
  { corr_id: 'c-1', agent_name: 'momentum', instrument: 'EQ:AAPL', timestamp: '2024-01-01T00:00:00Z', analysis: { momentum_strength: 0.5, confidence: 0.5, trend_direction: 'up' } },
  { corr_id: 'c-1', agent_name: 'risk', analysis: { risk_level: 'low', position_sizing: { recommended_size: 10 } } },
  { corr_id: 'c-1', agent_name: 'sentiment', instrument: 'x', analysis: { score: 1 } },
];

describe('matchesSignalSchema against the zod schemas', () => {
  it('each field of a valid signal of each kind, removed or set to each boundary value: the same verdict and the same signal', () => {
    let accepted = 0;
    for (const base of BASES) {
      expect(expectSameAsZod(base)).toBe(true);
      for (const path of PATHS) for (const value of BOUNDARY_VALUES) accepted += expectSameAsZod(mutate(base, path, value)) ? 1 : 0;
    }
    expect(accepted).toBeGreaterThan(100);
  });

  it('valid and near-valid signals (fast-check): the check accepts exactly what zod accepts, and parseSignal returns what zod returns', () => {
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(fc.oneof(validSignal, nearValidSignal, nearValidSignal), (signal) => {
        if (expectSameAsZod(signal)) accepted += 1;
        else refused += 1;
      }),
      { numRuns: 4_000 },
    );
    // Both answers come up often enough for the equivalence to mean something.
    expect(accepted).toBeGreaterThan(1_000);
    expect(refused).toBeGreaterThan(1_000);
  });

  it('every generated valid signal is accepted as sent: the same fields, in the sender\'s order', () => {
    fc.assert(
      fc.property(validSignal, (signal) => {
        const text = toPayload(signal);
        const result = parseSignal(encoder.encode(text), BIG);
        expect(result.ok).toBe(true);
        if (!result.ok) return;
        const sent = JSON.parse(text) as Record<string, unknown>;
        // What zod drops (an own __proto__ in an object it rebuilds) aside, the signal is the payload itself.
        if (!text.includes('"__proto__"')) expect(JSON.stringify(result.signal)).toBe(JSON.stringify(sent));
      }),
      { numRuns: 1_000 },
    );
  });
});

const momentum = (analysis: Record<string, unknown>, envelope: Record<string, unknown> = {}): Record<string, unknown> => ({
  corr_id: 'c-1',
  agent_name: 'momentum',
  analysis: { momentum_strength: 0.5, confidence: 0.5, trend_direction: 'up', ...analysis },
  ...envelope,
});
const risk = (sizing: unknown): Record<string, unknown> => ({ corr_id: 'c-1', agent_name: 'risk', analysis: { risk_level: 'low', position_sizing: sizing } });

describe('matchesSignalSchema at the bounds', () => {
  it.each([
    ['confidence 0', toPayload(momentum({ confidence: 0 })), true],
    ['confidence 1', toPayload(momentum({ confidence: 1 })), true],
    ['confidence 1.00000000000000001 (parses to 1)', toPayload(momentum({ confidence: numberToken('1.00000000000000001') })), true],
    ['confidence 1.0000001', toPayload(momentum({ confidence: 1.0000001 })), false],
    ['momentum_strength 1e400 (parses to Infinity)', toPayload(momentum({ momentum_strength: numberToken('1e400') })), false],
    ['momentum_strength as a string', toPayload(momentum({ momentum_strength: '0.5' })), false],
    ['trend_direction empty', toPayload(momentum({ trend_direction: '' })), false],
    ['recommended_size -0', toPayload(risk({ recommended_size: numberToken('-0') })), true],
    ['recommended_size 1e400', toPayload(risk({ recommended_size: numberToken('1e400') })), false],
    ['recommended_size -1e-400 (parses to -0)', toPayload(risk({ recommended_size: numberToken('-1e-400') })), true],
    ['position_sizing an array', toPayload(risk([{ recommended_size: 1 }])), false],
    ['corr_id of 128 characters', toPayload(momentum({}, { corr_id: 'c'.repeat(128) })), true],
    ['corr_id of 129 characters', toPayload(momentum({}, { corr_id: 'c'.repeat(129) })), false],
    ['instrument of 64 astral characters (128 UTF-16 units)', toPayload(momentum({}, { instrument: '😀'.repeat(64) })), true],
    ['instrument of 65 astral characters', toPayload(momentum({}, { instrument: '😀'.repeat(65) })), false],
    ['instrument of 65 lone surrogates', toPayload(momentum({}, { instrument: '\ud83d'.repeat(65) })), false],
    ['instrument null', toPayload(momentum({}, { instrument: null })), false],
    ['timestamp a number', toPayload(momentum({}, { timestamp: 1 })), false],
    ['another agent with an array for analysis', toPayload({ corr_id: 'c-1', agent_name: 'sentiment', analysis: [] }), false],
    ['another agent named with 65 characters', toPayload({ corr_id: 'c-1', agent_name: 'a'.repeat(65), analysis: {} }), false],
  ])('%s', (_name, text, valid) => {
    const parsed = JSON.parse(text) as Record<string, unknown>;
    expect(zodVerdict(parsed).success).toBe(valid);
    expect(matchesSignalSchema(parsed)).toBe(valid);
  });

  it('drops an own __proto__ key from the objects zod rebuilds, as zod does, and keeps it in those it passes through', () => {
    const text = '{"__proto__":{"x":1},"corr_id":"c-1","agent_name":"risk","meta":{"__proto__":2},' +
      '"analysis":{"__proto__":[],"risk_level":"low","position_sizing":{"__proto__":{},"recommended_size":1}}}';
    const result = parseSignal(encoder.encode(text));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const signal = result.signal as Record<string, unknown> & { analysis: Record<string, unknown> & { position_sizing: object } };
    expect(Object.hasOwn(signal, '__proto__')).toBe(false);
    expect(Object.hasOwn(signal.analysis, '__proto__')).toBe(false);
    expect(Object.hasOwn(signal.analysis.position_sizing, '__proto__')).toBe(false);
    expect(Object.hasOwn(signal.meta as object, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(signal)).toBe(Object.prototype);
    expect(signal).toStrictEqual(RiskSignal.parse(JSON.parse(text)));
  });
});

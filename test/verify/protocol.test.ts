import { describe, expect, it } from 'vitest';
import { checkDigestAnswer, checkDigestQuery, DIGEST_LIMITS, type DigestQuery } from '../../src/verify/protocol.js';

const HEX = 'a'.repeat(64);
const q = (over: Record<string, unknown> = {}): unknown[] => [{ ranges: [[null, null]], leaves: 4, split: 4, ...over }];

describe('checkDigestQuery refuses hostile queries with a reason', () => {
  it('accepts a well-formed query', () => {
    expect(
      checkDigestQuery(
        q({
          ranges: [
            [null, 'm'],
            ['m', null],
            ['a', 'b'],
          ],
        }),
      ),
    ).toEqual({
      ranges: [
        [null, 'm'],
        ['m', null],
        ['a', 'b'],
      ],
      leaves: 4,
      split: 4,
    });
  });

  it.each([
    ['no params', []],
    ['null', [null]],
    ['an array', [[]]],
    ['a string', ['x']],
    ['leaves 0', q({ leaves: 0 })],
    ['leaves too large', q({ leaves: DIGEST_LIMITS.maxLeaves + 1 })],
    ['leaves fractional', q({ leaves: 1.5 })],
    ['leaves a string', q({ leaves: '4' })],
    ['split 1', q({ split: 1 })],
    ['split too large', q({ split: DIGEST_LIMITS.maxSplit + 1 })],
    ['split NaN-like', q({ split: null })],
    ['no ranges', q({ ranges: [] })],
    ['ranges not an array', q({ ranges: { 0: [null, null] } })],
    ['too many ranges', q({ ranges: Array.from({ length: DIGEST_LIMITS.maxRanges + 1 }, () => [null, null]) })],
    ['a range of one bound', q({ ranges: [[null]] })],
    ['a range of three', q({ ranges: [[null, null, null]] })],
    ['a numeric bound', q({ ranges: [[1, null]] })],
    ['an empty-string bound', q({ ranges: [['', null]] })],
    ['an over-long bound', q({ ranges: [['x'.repeat(DIGEST_LIMITS.maxBoundChars + 1), null]] })],
    ['an object bound', q({ ranges: [[{ toString: 'a' }, null]] })],
    ['from = to', q({ ranges: [['b', 'b']] })],
    ['from > to', q({ ranges: [['c', 'b']] })],
    ['a range that is an object', q({ ranges: [{ 0: null, 1: null, length: 2 }] })],
  ])('refuses %s', (_name, params) => {
    expect(typeof checkDigestQuery(params as unknown[])).toBe('string');
  });

  it('does not look at members it does not know, however deep', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(checkDigestQuery([{ ranges: [[null, null]], leaves: 1, split: 2, extra: deep }])).toMatchObject({
      leaves: 1,
    });
  });
});

describe('checkDigestAnswer refuses answers that do not fit the query', () => {
  const query: DigestQuery = { ranges: [['b', 'm']], leaves: 2, split: 4 };
  const ok = (a: unknown): void => expect(typeof checkDigestAnswer([a], query)).not.toBe('string');
  const bad = (a: unknown): void => expect(typeof checkDigestAnswer([a], query)).toBe('string');

  it('accepts entries for a small range and bounds for a large one', () => {
    ok({
      count: 2,
      digest: HEX,
      entries: [
        ['b', HEX],
        ['c', HEX],
      ],
    });
    ok({ count: 0, digest: HEX, entries: [] });
    ok({ count: 9, digest: HEX, bounds: ['c', 'd', 'e'] });
  });

  it.each([
    ['not an array', null],
    ['wrong length', []],
  ])('refuses a result that is %s', (_n, result) => {
    expect(typeof checkDigestAnswer(result, query)).toBe('string');
  });

  it.each([
    ['a negative count', { count: -1, digest: HEX, entries: [] }],
    ['a fractional count', { count: 1.5, digest: HEX, entries: [['b', HEX]] }],
    ['an uppercase digest', { count: 0, digest: HEX.toUpperCase(), entries: [] }],
    ['a short digest', { count: 0, digest: 'abc', entries: [] }],
    ['entries missing for a small range', { count: 1, digest: HEX, bounds: ['c'] }],
    ['fewer entries than the count', { count: 2, digest: HEX, entries: [['b', HEX]] }],
    ['an entry outside the range', { count: 1, digest: HEX, entries: [['z', HEX]] }],
    ['an entry before the range', { count: 1, digest: HEX, entries: [['a', HEX]] }],
    [
      'entries out of order',
      {
        count: 2,
        digest: HEX,
        entries: [
          ['c', HEX],
          ['b', HEX],
        ],
      },
    ],
    [
      'duplicate entries',
      {
        count: 2,
        digest: HEX,
        entries: [
          ['c', HEX],
          ['c', HEX],
        ],
      },
    ],
    ['an entry with a bad hash', { count: 1, digest: HEX, entries: [['b', 'xyz']] }],
    ['bounds missing for a large range', { count: 9, digest: HEX, entries: [] }],
    ['no bounds', { count: 9, digest: HEX, bounds: [] }],
    ['too many bounds', { count: 9, digest: HEX, bounds: ['c', 'd', 'e', 'f'] }],
    ['a bound equal to the start (no progress)', { count: 9, digest: HEX, bounds: ['b'] }],
    ['a bound at the end', { count: 9, digest: HEX, bounds: ['m'] }],
    ['decreasing bounds', { count: 9, digest: HEX, bounds: ['d', 'c'] }],
    ['a non-string bound', { count: 9, digest: HEX, bounds: [3] }],
  ])('refuses %s', (_n, a) => bad(a));
});

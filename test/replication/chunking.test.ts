import { describe, expect, it } from 'vitest';
import {
  Reassembler,
  RXDB_FRAME_SIZES,
  encodeFrames,
  frameSizes,
  type ChunkRejection,
} from '../../src/replication/chunking.js';
import { DEFAULT_LIMITS } from '../../src/replication/limits.js';

const limits = {
  maxChunkTotal: DEFAULT_LIMITS.maxChunkTotal,
  maxIncompleteChunkSets: 4,
  maxMessageChars: DEFAULT_LIMITS.maxMessageChars,
};

function roundTrip(text: string, sizes = RXDB_FRAME_SIZES): { frames: string[]; out: string | undefined } {
  const frames = encodeFrames(text, sizes);
  const r = new Reassembler(limits);
  let out: string | undefined;
  for (const f of frames) {
    const msg = JSON.parse(f) as { chunk?: unknown };
    if (frames.length === 1) out = f;
    else {
      const whole = r.add(msg.chunk);
      if (whole !== undefined) out = whole;
    }
  }
  return { frames, out };
}

describe('chunking (docs/PROTOCOL.md §2.1)', () => {
  it('sends messages up to the threshold as one frame', () => {
    const text = JSON.stringify({ id: 'x', result: 'a'.repeat(16_384 - 24) });
    expect(text.length).toBeLessThanOrEqual(16_384);
    expect(encodeFrames(text, RXDB_FRAME_SIZES)).toEqual([text]);
  });

  it('splits longer messages into 16,384-char slices and joins them back', () => {
    const text = JSON.stringify({
      id: 'r|x|1',
      result: {
        documents: Array.from({ length: 300 }, (_, i) => ({ id: `d${i}`, t: 'x"\\'.repeat(40), _deleted: false })),
      },
    });
    const { frames, out } = roundTrip(text);
    expect(frames.length).toBe(Math.ceil(text.length / 16_384));
    expect(out).toBe(text);
    const first = JSON.parse(frames[0]!) as { chunk: { id: string; index: number; total: number; data: string } };
    expect(first.chunk.id).toMatch(/^[a-z]{10}$/);
    expect(first.chunk.index).toBe(0);
    expect(first.chunk.total).toBe(frames.length);
    expect(first.chunk.data.length).toBe(16_384);
    // escaping quotes and backslashes makes the frames themselves larger than 16 KiB
    expect(frames[0]!.length).toBeGreaterThan(16_384 + 1000);
  });

  it('restores a surrogate pair split at a chunk boundary', () => {
    const prefix = '{"s":"';
    // put the emoji's high surrogate at index 16383 and its low surrogate at 16384
    const filler = 'a'.repeat(16_383 - prefix.length);
    const text = `${prefix}${filler}😀 and more 𝄞"}`;
    expect(text.charCodeAt(16_383)).toBe(0xd83d);
    const { frames, out } = roundTrip(text);
    expect(frames.length).toBe(2);
    // the lone halves travel escaped as \udXXX
    expect(frames[0]).toContain('\\ud83d');
    expect(frames[1]).toContain('\\ude00');
    expect(out).toBe(text);
    expect((JSON.parse(out!) as { s: string }).s.endsWith('😀 and more 𝄞')).toBe(true);
  });

  it('derives a larger threshold from the link limit and keeps every frame within it in UTF-8 bytes', () => {
    const max = 262_144;
    const sizes = frameSizes(max);
    expect(sizes.threshold).toBe(Math.floor(max / 3));
    // worst cases: 3-byte characters, quotes that get escaped again, surrogate pairs cut at slice ends
    const nasty = [
      '€'.repeat(200_000),
      '"'.repeat(300_000),
      '\\'.repeat(300_000),
      '😀'.repeat(150_000),
      'a😀'.repeat(120_000),
    ];
    for (const s of nasty) {
      const text = JSON.stringify({ id: 'x', result: s });
      const { frames, out } = roundTrip(text, sizes);
      expect(out).toBe(text);
      for (const f of frames) expect(Buffer.byteLength(f, 'utf8')).toBeLessThanOrEqual(max);
    }
    expect(frameSizes(1000)).toEqual(RXDB_FRAME_SIZES); // never below RxDB's size
  });

  it('sends a longer message as one frame while its UTF-8 bytes fit the link limit', () => {
    const sizes = frameSizes(262_144);
    const ascii = JSON.stringify({ id: 'x', result: 'a'.repeat(250_000) });
    expect(ascii.length).toBeGreaterThan(sizes.threshold);
    expect(encodeFrames(ascii, sizes)).toEqual([ascii]);
    // As many characters, but two bytes each: too large for one frame.
    const wide = JSON.stringify({ id: 'x', result: 'é'.repeat(250_000) });
    const { frames, out } = roundTrip(wide, sizes);
    expect(frames.length).toBeGreaterThan(1);
    expect(out).toBe(wide);
    for (const f of frames) expect(Buffer.byteLength(f, 'utf8')).toBeLessThanOrEqual(262_144);
  });
});

describe('reassembly limits', () => {
  function make(over: Partial<typeof limits> = {}): { r: Reassembler; rejected: ChunkRejection[] } {
    const rejected: ChunkRejection[] = [];
    return { r: new Reassembler({ ...limits, ...over }, (why) => rejected.push(why)), rejected };
  }

  it('refuses malformed chunks and absurd totals or indices', () => {
    const { r, rejected } = make();
    const bad: unknown[] = [
      null,
      'x',
      [],
      { id: 'a', index: 0, total: 2 },
      { id: 5, index: 0, total: 2, data: '' },
      { id: '', index: 0, total: 2, data: '' },
      { id: 'x'.repeat(65), index: 0, total: 2, data: '' },
      { id: 'a', index: 0, total: 1e12, data: '' },
      { id: 'a', index: 0, total: 0, data: '' },
      { id: 'a', index: 0, total: -1, data: '' },
      { id: 'a', index: 0, total: 2.5, data: '' },
      { id: 'a', index: 0, total: '2', data: '' },
      { id: 'a', index: 0, total: DEFAULT_LIMITS.maxChunkTotal + 1, data: '' },
      { id: 'a', index: -1, total: 2, data: '' },
      { id: 'a', index: 2, total: 2, data: '' },
      { id: 'a', index: 0.5, total: 2, data: '' },
      { id: 'a', index: Number.NaN, total: 2, data: '' },
    ];
    for (const c of bad) expect(r.add(c)).toBeUndefined();
    expect(rejected.length).toBe(bad.length);
    expect(r.pendingSets).toBe(0);
  });

  it('drops sets whose parts disagree on total or repeat an index', () => {
    const { r, rejected } = make();
    expect(r.add({ id: 'a', index: 0, total: 3, data: 'x' })).toBeUndefined();
    expect(r.add({ id: 'a', index: 1, total: 4, data: 'y' })).toBeUndefined();
    expect(rejected).toEqual(['mismatch']);
    expect(r.pendingSets).toBe(0);
    // later parts of a dropped set do not start a new one
    expect(r.add({ id: 'a', index: 2, total: 3, data: 'z' })).toBeUndefined();
    expect(rejected).toEqual(['mismatch', 'discarded']);
    expect(r.add({ id: 'b', index: 0, total: 2, data: 'x' })).toBeUndefined();
    expect(r.add({ id: 'b', index: 0, total: 2, data: 'x' })).toBeUndefined();
    expect(rejected.at(-1)).toBe('duplicate');
    expect(r.pendingChars).toBe(0);
  });

  it('keeps at most maxIncompleteChunkSets open sets, evicting the oldest', () => {
    const { r, rejected } = make({ maxIncompleteChunkSets: 3 });
    for (let i = 0; i < 100; i++) r.add({ id: `s${i}`, index: 0, total: limits.maxChunkTotal, data: 'x'.repeat(10) });
    expect(r.pendingSets).toBe(3);
    expect(r.pendingChars).toBe(30);
    expect(rejected.filter((x) => x === 'evicted').length).toBe(97);
    // a complete set still goes through
    expect(r.add({ id: 'ok', index: 1, total: 2, data: 'b' })).toBeUndefined();
    expect(r.add({ id: 'ok', index: 0, total: 2, data: 'a' })).toBe('ab');
  });

  it('bounds a message and all open sets together by maxMessageChars', () => {
    const { r, rejected } = make({ maxMessageChars: 100 });
    expect(r.add({ id: 'a', index: 0, total: 3, data: 'x'.repeat(60) })).toBeUndefined();
    expect(r.add({ id: 'a', index: 1, total: 3, data: 'x'.repeat(60) })).toBeUndefined();
    expect(rejected).toEqual(['size']);
    expect(r.pendingChars).toBe(0);
    r.add({ id: 'b', index: 0, total: 2, data: 'x'.repeat(60) });
    r.add({ id: 'c', index: 0, total: 2, data: 'x'.repeat(60) });
    expect(r.pendingChars).toBe(60);
    expect(r.add({ id: 'd', index: 0, total: 1, data: 'x'.repeat(101) })).toBeUndefined();
    expect(rejected.at(-1)).toBe('size');
  });

  it('passes single-chunk messages straight through and completes out-of-order parts', () => {
    const { r } = make();
    expect(r.add({ id: 'one', index: 0, total: 1, data: '{"a":1}' })).toBe('{"a":1}');
    expect(r.add({ id: 'o', index: 2, total: 3, data: 'c' })).toBeUndefined();
    expect(r.add({ id: 'o', index: 0, total: 3, data: 'a' })).toBeUndefined();
    expect(r.add({ id: 'o', index: 1, total: 3, data: 'b' })).toBe('abc');
    expect(r.pendingSets).toBe(0);
  });
});

import { describe, expect, it } from 'vitest';
import {
  CandidateQueue,
  DEFAULT_BACKOFF,
  isInitiator,
  nextBackoff,
  parseSignal,
  type PeerSignal,
} from '../../src/transport/mesh-rules.js';

describe('isInitiator', () => {
  it('makes the peer with the smaller id initiate, from both points of view', () => {
    expect(isInitiator('abcdefghijkl', 'bbcdefghijkl')).toBe(true);
    expect(isInitiator('bbcdefghijkl', 'abcdefghijkl')).toBe(false);
  });
  it('compares as JS strings (UTF-16 code units), not by length or locale', () => {
    expect(isInitiator('zz', 'aaa')).toBe(false);
    expect(isInitiator('Z', 'a')).toBe(true);
    expect(isInitiator('ab', 'abc')).toBe(true);
  });
  it('never makes a peer its own initiator', () => {
    expect(isInitiator('same', 'same')).toBe(false);
  });
  it('gives exactly one initiator for every pair', () => {
    const ids = ['ymmbnxvicdmx', 'divebyugpvvy', 'gtecqpusjrrl', 'shgfmvthoeiq'];
    for (const x of ids) for (const y of ids) if (x !== y) expect(isInitiator(x, y)).not.toBe(isInitiator(y, x));
  });
});

describe('nextBackoff', () => {
  it('starts at 500 ms, doubles and stops at 15 s', () => {
    const delays: number[] = [];
    let d: number | undefined;
    for (let i = 0; i < 8; i++) delays.push((d = nextBackoff(d)));
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 15_000, 15_000, 15_000]);
    expect(DEFAULT_BACKOFF).toEqual({ initialMs: 500, maxMs: 15_000, factor: 2 });
  });
  it('honours custom options', () => {
    expect(nextBackoff(undefined, { initialMs: 10, maxMs: 25, factor: 3 })).toBe(10);
    expect(nextBackoff(10, { initialMs: 10, maxMs: 25, factor: 3 })).toBe(25);
  });
});

describe('parseSignal', () => {
  it('accepts offers, answers and node-datachannel candidates, keeping only known fields', () => {
    expect(parseSignal({ type: 'offer', sdp: 'v=0\r\n', extra: 1 })).toEqual({ type: 'offer', sdp: 'v=0\r\n' });
    expect(parseSignal({ type: 'answer', sdp: 'v=0\r\n' })).toEqual({ type: 'answer', sdp: 'v=0\r\n' });
    const text = 'a=candidate:1 1 UDP 2114977791 127.0.0.1 41670 typ host';
    const candidate = { candidate: text, sdpMLineIndex: null, sdpMid: '0' };
    expect(parseSignal({ type: 'candidate', candidate })).toEqual({ type: 'candidate', candidate });
  });
  it('rejects everything else', () => {
    for (const bad of [
      null,
      'offer',
      42,
      [],
      {},
      { type: 'offer' },
      { type: 'offer', sdp: '' },
      { type: 'offer', sdp: 'x'.repeat(70_000) },
      { type: 'answer', sdp: 7 },
      { type: 'candidate' },
      { type: 'candidate', candidate: null },
      { type: 'candidate', candidate: { candidate: 5 } },
      { type: 'renegotiate', renegotiate: true },
      { type: 'transceiverRequest', transceiverRequest: { kind: 'audio' } },
      { type: '__proto__', sdp: 'v=0' },
    ]) {
      expect(parseSignal(bad)).toBeUndefined();
    }
  });
  it('drops malformed optional candidate fields instead of passing them on', () => {
    const candidate = { candidate: 'c', sdpMLineIndex: -1, sdpMid: { x: 1 } };
    expect(parseSignal({ type: 'candidate', candidate })).toEqual({
      type: 'candidate',
      candidate: { candidate: 'c' },
    });
  });
});

describe('CandidateQueue', () => {
  const cand = (n: number): PeerSignal => ({ type: 'candidate', candidate: { candidate: `c${n}`, sdpMid: '0' } });

  it('holds early candidates until the offer of the same attempt takes them, in order', () => {
    const q = new CandidateQueue();
    expect(q.add('r', 'conn1', cand(1))).toBe(true);
    expect(q.add('r', 'conn1', cand(2))).toBe(true);
    expect(q.size('r')).toBe(2);
    expect(q.take('r', 'conn1')).toEqual([cand(1), cand(2)]);
    expect(q.take('r', 'conn1')).toEqual([]);
    expect(q.size('r')).toBe(0);
  });
  it('keeps only the newest attempt per remote', () => {
    const q = new CandidateQueue();
    q.add('r', 'old', cand(1));
    q.add('r', 'new', cand(2));
    expect(q.take('r', 'old')).toEqual([]);
    q.add('r', 'new', cand(3));
    expect(q.take('r', 'new')).toEqual([cand(3)]);
  });
  it('gives nothing to an offer of another attempt, and discards what it held', () => {
    const q = new CandidateQueue();
    q.add('r', 'one', cand(1));
    expect(q.take('r', 'two')).toEqual([]);
    expect(q.size('r')).toBe(0);
  });
  it('matches attempts without a connectionId (older RxDB) with each other', () => {
    const q = new CandidateQueue();
    q.add('r', undefined, cand(1));
    expect(q.take('r', undefined)).toEqual([cand(1)]);
  });
  it('keeps remotes apart and forgets a remote that left', () => {
    const q = new CandidateQueue();
    q.add('r1', 'c', cand(1));
    q.add('r2', 'c', cand(2));
    q.drop('r1');
    expect(q.take('r1', 'c')).toEqual([]);
    expect(q.take('r2', 'c')).toEqual([cand(2)]);
    q.add('r3', 'c', cand(3));
    q.clear();
    expect(q.size('r3')).toBe(0);
  });
  it('is bounded per remote and in remotes (senders are untrusted)', () => {
    const q = new CandidateQueue(3, 2);
    for (let i = 0; i < 3; i++) expect(q.add('r', 'c', cand(i))).toBe(true);
    expect(q.add('r', 'c', cand(3))).toBe(false);
    expect(q.size('r')).toBe(3);
    q.add('s', 'c', cand(1));
    q.add('t', 'c', cand(1));
    expect(q.size('r')).toBe(0); // the oldest remote was evicted
    expect(q.size('s')).toBe(1);
    expect(q.size('t')).toBe(1);
  });
});

import { describe, expect, it } from 'vitest';
import { deriveTopicKeys } from '../../src/trust/keys.js';
import { open, seal, signalAad } from '../../src/trust/seal.js';

const secret = (s: string): Buffer => Buffer.from(s, 'utf8');

describe('deriveTopicKeys', () => {
  const k = deriveTopicKeys(secret('correct horse battery staple'), 'nightly-sync');

  it('is deterministic and gives separate 32-byte keys', () => {
    const again = deriveTopicKeys(secret('correct horse battery staple'), 'nightly-sync');
    expect(again.room).toBe(k.room);
    expect(again.sealKey.equals(k.sealKey)).toBe(true);
    expect(again.authKey.equals(k.authKey)).toBe(true);
    expect(k.sealKey).toHaveLength(32);
    expect(k.authKey).toHaveLength(32);
    expect(k.sealKey.equals(k.authKey)).toBe(false);
  });

  it('gives a room name RxDB-style servers accept, which does not contain the topic', () => {
    expect(k.room).toMatch(/^p2ps-[A-Za-z0-9_-]{43}$/);
    expect(k.room.length).toBeGreaterThanOrEqual(6);
    expect(k.room.length).toBeLessThanOrEqual(99);
    expect(k.room).not.toContain('nightly');
  });

  it('changes every key with the secret and with the topic', () => {
    for (const other of [
      deriveTopicKeys(secret('correct horse battery stapler'), 'nightly-sync'),
      deriveTopicKeys(secret('correct horse battery staple'), 'nightly-sync2'),
    ]) {
      expect(other.room).not.toBe(k.room);
      expect(other.sealKey.equals(k.sealKey)).toBe(false);
      expect(other.authKey.equals(k.authKey)).toBe(false);
    }
  });

  // The vector was computed independently with Python's hashlib.scrypt and an RFC 5869 HKDF (docs/PROTOCOL.md).
  it('matches a pinned vector (the derivation is part of the protocol)', () => {
    const v = deriveTopicKeys(secret('s3cret'), 'topic-one');
    expect({ room: v.room, seal: v.sealKey.toString('hex').slice(0, 16), auth: v.authKey.toString('hex').slice(0, 16) })
      .toMatchInlineSnapshot(`
      {
        "auth": "cbc616a2c1fcab67",
        "room": "p2ps-SZVXF3nhUBKZD7Q3Y3DmQZEUp5TLrP5HPDuG_GPoLpg",
        "seal": "15e950f2910d1c0b",
      }
    `);
  });

  it('refuses an empty secret', () => {
    expect(() => deriveTopicKeys(Buffer.alloc(0), 'topic-one')).toThrow(/empty/);
  });
});

describe('seal / open', () => {
  const key = Buffer.alloc(32, 7);
  const aad = signalAad('room-x', 'aaaa', 'bbbb', 'cid');

  it('round-trips and never shows the plaintext', () => {
    const box = seal(key, '{"type":"offer","sdp":"v=0"}', aad);
    expect(box).not.toContain('sdp');
    expect(open(key, box, aad)).toBe('{"type":"offer","sdp":"v=0"}');
    expect(seal(key, 'same', aad)).not.toBe(seal(key, 'same', aad)); // fresh IV each time
  });

  it('does not open under another key, another sender, receiver, room or attempt', () => {
    const box = seal(key, 'hello', aad);
    expect(open(Buffer.alloc(32, 8), box, aad)).toBeUndefined();
    expect(open(key, box, signalAad('room-x', 'cccc', 'bbbb', 'cid'))).toBeUndefined();
    expect(open(key, box, signalAad('room-x', 'aaaa', 'cccc', 'cid'))).toBeUndefined();
    expect(open(key, box, signalAad('room-y', 'aaaa', 'bbbb', 'cid'))).toBeUndefined();
    expect(open(key, box, signalAad('room-x', 'aaaa', 'bbbb', undefined))).toBeUndefined();
  });

  it('rejects every single-byte tampering and malformed boxes without throwing', () => {
    const bytes = Buffer.from(seal(key, 'hello world', aad), 'base64url');
    for (let i = 0; i < bytes.length; i++) {
      const t = Buffer.from(bytes);
      t[i] = t[i]! ^ 1;
      expect(open(key, t.toString('base64url'), aad)).toBeUndefined();
    }
    for (const bad of [
      undefined,
      null,
      42,
      {},
      '',
      'AAAA',
      '!!!!',
      'x'.repeat(100_000),
      bytes.subarray(0, 27).toString('base64url'),
    ]) {
      expect(open(key, bad, aad)).toBeUndefined();
    }
  });
});

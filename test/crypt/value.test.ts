import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createKeyring, readKeyring, unlockKeyring } from '../../src/crypt/keyring.js';
import { readSecret } from '../../src/crypt/secret.js';
import { isEncryptedValue, keyIdOf, newDataKey, ValueCipher, VALUE_PREFIX } from '../../src/crypt/value.js';
import type { Json } from '../../src/core/types.js';

const cipher = (): ValueCipher => {
  const k = newDataKey();
  return new ValueCipher([k], k);
};

describe('encrypted value format', () => {
  const c = cipher();

  it('round-trips any JSON value with its type, behind the versioned prefix', () => {
    const values: Json[] = ['secret', '', 0, -1.5, true, false, null, [1, 'a', { b: [] }], { nested: { x: 'é😀' } }];
    for (const v of values) {
      const e = c.encrypt(v, 'doc1', 'f');
      expect(e.startsWith(VALUE_PREFIX)).toBe(true);
      expect(isEncryptedValue(e)).toBe(true);
      expect(keyIdOf(e)).toBe(c.current.id);
      expect(c.decrypt(e, 'doc1', 'f')).toEqual(v);
    }
  });

  it('uses a fresh nonce: the same value encrypts differently every time', () => {
    const seen = new Set(Array.from({ length: 50 }, () => c.encrypt('same', 'd', 'f')));
    expect(seen.size).toBe(50);
  });

  it('refuses a value with any byte changed (E_DECRYPT naming field and document)', () => {
    const e = c.encrypt({ card: '4111 1111 1111 1111' }, 'd1', 'payment');
    const body = Buffer.from(e.slice(VALUE_PREFIX.length), 'base64url');
    for (let i = 0; i < body.length; i++) {
      const t = Buffer.from(body);
      t[i]! ^= 0x01;
      const tampered = VALUE_PREFIX + t.toString('base64url');
      expect(() => c.decrypt(tampered, 'd1', 'payment'), `byte ${i}`).toThrow(
        expect.objectContaining({ code: 'E_DECRYPT', details: { id: 'd1', field: 'payment' } }),
      );
    }
    // Truncated, extended, not base64url, no prefix.
    for (const bad of [e.slice(0, -1), e + 'A', e.slice(0, 30), VALUE_PREFIX + '!!!!', e.slice(3)]) {
      expect(() => c.decrypt(bad, 'd1', 'payment')).toThrow(expect.objectContaining({ code: 'E_DECRYPT' }));
    }
  });

  it('refuses a value moved to another document or another field', () => {
    const e = c.encrypt('salary: 1M', 'alice', 'note');
    expect(() => c.decrypt(e, 'bob', 'note')).toThrow(
      /field "note" of document "bob" does not decrypt: the authentication tag/,
    );
    expect(() => c.decrypt(e, 'alice', 'title')).toThrow(expect.objectContaining({ code: 'E_DECRYPT' }));
    // Ids and fields are bound unambiguously: no splitting trick makes ("a,b", "c") equal ("a", "b,c").
    const f = c.encrypt('x', 'a","b', 'c');
    expect(() => c.decrypt(f, 'a', '","bc')).toThrow(expect.objectContaining({ code: 'E_DECRYPT' }));
  });

  it('refuses a value under a key it does not hold (another store, or a wrong key)', () => {
    const other = cipher();
    const e = other.encrypt('x', 'd', 'f');
    expect(() => c.decrypt(e, 'd', 'f')).toThrow(/does not hold/);
    // Same key id, different key bytes: the tag fails.
    const impostor = new ValueCipher([], { id: c.current.id, key: newDataKey().key });
    expect(() => c.decrypt(impostor.encrypt('x', 'd', 'f'), 'd', 'f')).toThrow(/authentication tag/);
  });

  it('decrypts values of every key it holds and encrypts with the current one', () => {
    const oldKey = newDataKey();
    const newKey = newDataKey();
    const before = new ValueCipher([oldKey], oldKey).encrypt('v', 'd', 'f');
    const both = new ValueCipher([oldKey, newKey], newKey);
    expect(both.decrypt(before, 'd', 'f')).toBe('v');
    expect(both.isCurrent(before)).toBe(false);
    expect(both.isCurrent(both.encrypt('v', 'd', 'f'))).toBe(true);
  });
});

describe('keyring and key files', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'p2psync-crypt-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('opens with the right key only, and detects an altered field list', async () => {
    const path = join(dir, 'k.keys');
    const made = await createKeyring(path, ['a', 'b'], Buffer.from('right'));
    const read = (await readKeyring(path))!;
    const opened = await unlockKeyring(path, read, Buffer.from('right'));
    expect(opened.fields).toEqual(['a', 'b']);
    expect(opened.cipher.decrypt(made.cipher.encrypt(1, 'd', 'a'), 'd', 'a')).toBe(1);
    await expect(unlockKeyring(path, read, Buffer.from('wrong'))).rejects.toMatchObject({ code: 'E_WRONG_KEY' });
    // Someone drops field "b" from the list to turn its encryption off: the slot no longer authenticates.
    const altered = { ...read.file, fields: ['a'] };
    await expect(
      unlockKeyring(path, { text: JSON.stringify(altered), file: altered }, Buffer.from('right')),
    ).rejects.toMatchObject({ code: 'E_WRONG_KEY' });
  });

  it('reports a damaged keyring as E_KEYRING and a missing one as none', async () => {
    const path = join(dir, 'k.keys');
    expect(await readKeyring(path)).toBeUndefined();
    for (const text of [
      '{',
      '[]',
      '{"p2psyncKeyring":2}',
      '{"p2psyncKeyring":1,"fields":[],"current":"x","slots":[]}',
    ]) {
      await writeFile(path, text);
      await expect(readKeyring(path)).rejects.toMatchObject({ code: 'E_KEYRING' });
    }
    await createKeyring(path, ['a'], Buffer.from('k'));
    const hostile = JSON.parse(await readFile(path, 'utf8'));
    hostile.slots[0].N = 1 << 30;
    await writeFile(path, JSON.stringify(hostile));
    await expect(readKeyring(path)).rejects.toMatchObject({ code: 'E_KEYRING' });
  });

  it('reads key files (one final line break ignored) and refuses missing or empty ones with E_KEY_FILE', async () => {
    await writeFile(join(dir, 'a'), 'secret\n');
    await writeFile(join(dir, 'b'), 'secret');
    await writeFile(join(dir, 'c'), 'secret\r\n');
    await writeFile(join(dir, 'empty'), '\n');
    for (const f of ['a', 'b', 'c']) expect((await readSecret({ file: join(dir, f) })).toString()).toBe('secret');
    expect((await readSecret({ text: 'secret', name: 'P2PSYNC_ENCRYPTION_KEY' })).toString()).toBe('secret');
    await expect(readSecret({ file: join(dir, 'empty') })).rejects.toMatchObject({
      code: 'E_KEY_FILE',
      message: /is empty/,
    });
    await expect(readSecret({ file: join(dir, 'missing') })).rejects.toMatchObject({
      code: 'E_KEY_FILE',
      message: /does not exist/,
    });
    await expect(readSecret({ file: dir })).rejects.toMatchObject({ code: 'E_KEY_FILE', message: /directory/ });
    await expect(readSecret({ text: '', name: 'P2PSYNC_ENCRYPTION_KEY' })).rejects.toMatchObject({
      code: 'E_KEY_FILE',
    });
  });
});

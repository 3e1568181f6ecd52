import { describe, expect, it, vi } from 'vitest';
import { DocCipher } from '../../src/crypt/doc-cipher.js';
import { EncryptedStore } from '../../src/crypt/encrypted-store.js';
import { newDataKey, VALUE_PREFIX, ValueCipher } from '../../src/crypt/value.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { runStoreContract } from '../store/contract.js';
import { CONTRACT_FIELDS, encryptedFileHarness } from './harness.js';

runStoreContract('encrypted memory', () => {
  const opened: EncryptedStore[] = [];
  const key = newDataKey();
  return {
    persistent: false,
    async open(options = {}) {
      const s = new EncryptedStore(
        new MemoryStore(options),
        new DocCipher('id', CONTRACT_FIELDS, new ValueCipher([key], key)),
      );
      opened.push(s);
      return s;
    },
    async cleanup() {
      for (const s of opened.splice(0)) await s.close();
    },
  };
});
runStoreContract('encrypted NDJSON file', () => encryptedFileHarness('docs.ndjson'));

describe('EncryptedStore keeps replication cheap', () => {
  it('passes a written document on as the same object, and hands an equal assumed state over as its own ciphertext', async () => {
    const key = newDataKey();
    const inner = new MemoryStore();
    const store = new EncryptedStore(inner, new DocCipher('id', ['secret'], new ValueCipher([key], key)));
    const seen: unknown[] = [];
    store.changes$.subscribe((c) => seen.push(...c.documents));
    const written = { id: 'a', secret: 's', _deleted: false };
    expect(
      await store.bulkWrite([{ document: written, expected: null }], { kind: 'peer', peerToken: 'pppppppppp' }),
    ).toEqual([]);
    expect(seen[0]).toBe(written);
    expect((await store.get(['a'])).get('a')).toBe(written);
    expect((await store.changesSince(null, 10)).documents[0]).toBe(written);
    await store.setPeerState('k', { assumed: { ids: ['a'], states: new Map([['a', written]]) } });
    const stored = (await inner.get(['a'])).get('a')!;
    expect(stored.secret).toMatch(/^p2psync:v1:/);
    // The inner store's journal writes an assumed state identical to the document as a marker, not a body.
    expect((await inner.getPeerState('k'))!.assumed.get('a')).toBe(stored);
    await store.close();
  });
});

describe('EncryptedStore compare-and-set against a change that lands between its read and its write', () => {
  it('reports the real current state (decrypted) as the conflict, for every row of that id', async () => {
    const key = newDataKey();
    const docs = new DocCipher('id', ['v'], new ValueCipher([key], key));
    // An inner store where an outside edit lands right before the next batch is applied.
    class Racing extends MemoryStore {
      sneak: (() => Promise<unknown>) | undefined;
      override async bulkWrite(
        ...args: Parameters<MemoryStore['bulkWrite']>
      ): Promise<Awaited<ReturnType<MemoryStore['bulkWrite']>>> {
        const s = this.sneak;
        this.sneak = undefined;
        await s?.();
        return super.bulkWrite(...args);
      }
    }
    const inner = new Racing();
    const store = new EncryptedStore(inner, docs);
    await store.bulkWrite([{ document: { id: 'a', v: 1, _deleted: false }, expected: null }], { kind: 'local' });
    const stored = (await inner.get(['a'])).get('a')!;
    inner.sneak = () =>
      inner.bulkWrite([{ document: docs.encrypt({ id: 'a', v: 'outside', _deleted: false }), expected: stored }], {
        kind: 'outside',
      });
    const conflicts = await store.bulkWrite(
      [
        { document: { id: 'a', v: 2, _deleted: false }, expected: { id: 'a', v: 1, _deleted: false } },
        { document: { id: 'a', v: 3, _deleted: false }, expected: { id: 'a', v: 2, _deleted: false } },
        { document: { id: 'b', v: 1, _deleted: false }, expected: null },
      ],
      { kind: 'local' },
    );
    expect(conflicts).toEqual([
      { id: 'a', v: 'outside', _deleted: false },
      { id: 'a', v: 'outside', _deleted: false },
    ]);
    expect((await store.get(['a', 'b'])).get('a')).toEqual({ id: 'a', v: 'outside', _deleted: false });
    expect((await store.get(['b'])).get('b')).toEqual({ id: 'b', v: 1, _deleted: false });
    await store.close();
  });
});

describe('EncryptedStore.error$', () => {
  it('reports a value that does not decrypt, arriving by an outside edit, and completes when the store closes', async () => {
    const key = newDataKey();
    const inner = new MemoryStore();
    const store = new EncryptedStore(inner, new DocCipher('id', ['v'], new ValueCipher([key], key)));
    const errors: string[] = [];
    let completed = false;
    store.error$.subscribe({ next: (e) => void errors.push(e.code), complete: () => (completed = true) });
    const seen: string[] = [];
    store.changes$.subscribe((c) => seen.push(...c.documents.map((d) => String(d.id))));
    const bad = { id: 'bad', v: `${VALUE_PREFIX}${'A'.repeat(58)}`, _deleted: false };
    await inner.bulkWrite([{ document: bad, expected: null }], { kind: 'outside' });
    await inner.bulkWrite([{ document: { id: 'good', v: 'plain', _deleted: false }, expected: null }], {
      kind: 'outside',
    });
    // the changes arrive in order: once the good one is seen, the bad one was handled
    await vi.waitFor(() => expect(seen).toEqual(['good']));
    // (reported twice today: once by the change feed, once by the re-encryption of stale values)
    expect(errors.length).toBeGreaterThan(0);
    expect(new Set(errors)).toEqual(new Set(['E_DECRYPT']));
    expect(completed).toBe(false);
    await store.close();
    expect(completed).toBe(true);
  });
});

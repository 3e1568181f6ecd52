import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PeerStateStore, Store } from '../../src/core/store.js';
import { rekey } from '../../src/crypt/rekey.js';
import { keyIdOf } from '../../src/crypt/value.js';
import { doc, insert } from '../store/contract.js';
import { tempDir } from '../store/harness.js';
import { runCli } from '../helpers/spawn.js';
import { filesContaining, openEncrypted, snapshotDir } from './harness.js';

describe('rekey', () => {
  let dir: string;
  let path: string;
  let oldKey: string;
  let newKey: string;
  const open: Store[] = [];
  const openWith = async (keyFile: string): Promise<Store & PeerStateStore> => {
    const s = await openEncrypted({ path, watch: false }, { key: { file: keyFile } });
    open.push(s);
    return s;
  };

  beforeEach(async () => {
    dir = await tempDir();
    path = join(dir, 'notes.ndjson');
    oldKey = join(dir, 'old.key');
    newKey = join(dir, 'new.key');
    await writeFile(oldKey, 'old key\n');
    await writeFile(newKey, 'new key\n');
    const s = await openEncrypted({ path, watch: false }, { key: { file: oldKey }, fields: ['secret'] });
    await insert(s, [doc('a', { secret: 'SECRET-A' }), doc('b', { secret: 'SECRET-B' }), doc('c', { title: 'plain' })]);
    await s.bulkWrite(
      [{ document: doc('b', { secret: 'SECRET-B' }, true), expected: doc('b', { secret: 'SECRET-B' }) }],
      { kind: 'local' },
    );
    await s.setPeerState('p', { down: { id: 'x', lwt: 1 }, assumed: [['a', doc('a', { secret: 'SECRET-OLD-A' })]] });
    await s.close();
  });
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it('re-encrypts documents, tombstones and peer states; then only the new key opens the store', async () => {
    const before = await openWith(oldKey);
    const feed = await before.changesSince(null, 100);
    const peer = await before.getPeerState('p');
    const oldIds = new Set((await readFile(path, 'utf8')).match(/p2psync:v1:[\w-]+/g)!.map((v) => keyIdOf(v)));
    await before.close();

    expect(await rekey({ path, oldKey: { file: oldKey }, newKey: { file: newKey } })).toEqual({
      documents: 2,
      peerStates: 1,
    });
    await expect(openWith(oldKey)).rejects.toMatchObject({ code: 'E_WRONG_KEY' });
    const after = await openWith(newKey);
    expect((await after.changesSince(null, 100)).documents).toEqual(expect.arrayContaining(feed.documents));
    expect(await after.getPeerState('p')).toEqual(peer);
    const newIds = new Set((await readFile(path, 'utf8')).match(/p2psync:v1:[\w-]+/g)!.map((v) => keyIdOf(v)));
    expect(newIds.size).toBe(1);
    expect([...newIds].some((id) => oldIds.has(id))).toBe(false);
    for (const s of ['SECRET-A', 'SECRET-B', 'SECRET-OLD-A']) expect(await filesContaining(dir, s)).toEqual([]);
  });

  it('refuses a wrong or missing old key, a missing new key file, the same key, and a store a join owns; nothing changes', async () => {
    await writeFile(join(dir, 'wrong.key'), 'nope');
    const before = await snapshotDir(dir);
    await expect(
      rekey({ path, oldKey: { file: join(dir, 'wrong.key') }, newKey: { file: newKey } }),
    ).rejects.toMatchObject({ code: 'E_WRONG_KEY' });
    await expect(rekey({ path, oldKey: undefined, newKey: { file: newKey } })).rejects.toMatchObject({
      code: 'E_KEY_REQUIRED',
    });
    await expect(
      rekey({ path, oldKey: { file: oldKey }, newKey: { file: join(dir, 'missing.key') } }),
    ).rejects.toMatchObject({ code: 'E_KEY_FILE' });
    await expect(
      rekey({ path, oldKey: { file: oldKey }, newKey: { text: 'old key', name: 'K' } }),
    ).rejects.toMatchObject({ code: 'E_BAD_OPTION' });
    expect(await snapshotDir(dir)).toEqual(before);
    // A running owner (what `join` is): refused before anything is written.
    const owner = await openWith(oldKey);
    const keyring = await readFile(`${path}.p2psync.keys`);
    await expect(rekey({ path, oldKey: { file: oldKey }, newKey: { file: newKey } })).rejects.toMatchObject({
      code: 'E_LOCKED',
    });
    expect(await readFile(`${path}.p2psync.keys`)).toEqual(keyring);
    expect((await owner.get(['a'])).get('a')).toEqual(doc('a', { secret: 'SECRET-A' }));
  });

  it('takes in puts that land while it runs, and ends with every acknowledged one readable with the new key', async () => {
    const s = await openWith(oldKey);
    await insert(
      s,
      Array.from({ length: 10_000 }, (_, i) => doc(`bulk${i}`, { secret: `BULK-${i}` })),
    );
    await s.close();
    let finished = false;
    const running = rekey({ path, oldKey: { file: oldKey }, newKey: { file: newKey } }).finally(
      () => (finished = true),
    );
    const acknowledged: number[] = [];
    for (let i = 0; !finished; i++) {
      // While rekey owns the store, put edits the file under the write lock with the keyring it finds there.
      const r = await runCli([
        'put',
        '--store',
        path,
        '--key-file',
        oldKey,
        '--json',
        JSON.stringify({ id: `put${i}`, secret: `put value ${i}` }),
      ]);
      if (r.code === 0) acknowledged.push(i);
      else expect(r.stdout, r.stderr).toMatch(/"code":"E_WRONG_KEY"/); // after the rekey: the old key no longer opens it
    }
    await running;
    expect(acknowledged.length).toBeGreaterThan(0);
    const after = await openWith(newKey);
    const got = await after.get(acknowledged.map((i) => `put${i}`));
    for (const i of acknowledged) expect(got.get(`put${i}`)).toEqual(doc(`put${i}`, { secret: `put value ${i}` }));
    // (A needle with a space: a short one made of base64url characters turns up inside ciphertexts by chance.)
    expect(await filesContaining(dir, 'put value')).toEqual([]);
  });
});

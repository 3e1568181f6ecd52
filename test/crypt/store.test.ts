import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PeerStateStore, Store } from '../../src/core/store.js';
import type { DocState } from '../../src/core/types.js';
import { VALUE_PREFIX } from '../../src/crypt/value.js';
import { openStore, type FileStoreOptions } from '../../src/store/open.js';
import { doc, insert } from '../store/contract.js';
import { EventLog, eventually, tempDir } from '../store/harness.js';
import { filesContaining, keyText, openEncrypted, snapshotDir } from './harness.js';
import { rm } from 'node:fs/promises';

const SECRET = 'correct-horse-battery';
const KEY = keyText('the store key');

describe('encrypted file store', () => {
  let dir: string;
  let path: string;
  const open: Store[] = [];
  const track = async (s: Promise<Store & PeerStateStore>): Promise<Store & PeerStateStore> => {
    const store = await s;
    open.push(store);
    return store;
  };
  const create = (fields = ['secret', 'note']): Promise<Store & PeerStateStore> =>
    track(openEncrypted({ path, watch: false }, { fields, key: KEY }));
  const reopen = (options: Partial<FileStoreOptions> = {}): Promise<Store & PeerStateStore> =>
    track(openEncrypted({ path, watch: false, ...options }, { key: KEY }));

  beforeEach(async () => {
    dir = await tempDir();
    path = join(dir, 'notes.json');
  });
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps every on-disk copy of an encrypted field as ciphertext: file, sidecar documents, tombstones, peer states', async () => {
    const store = await create();
    await insert(store, [
      doc('a', { secret: SECRET, title: 'visible' }),
      doc('b', { secret: `${SECRET}-b`, note: { deep: SECRET } }),
    ]);
    await store.bulkWrite(
      [
        {
          document: doc('b', { secret: `${SECRET}-b`, note: { deep: SECRET } }, true),
          expected: doc('b', { secret: `${SECRET}-b`, note: { deep: SECRET } }),
        },
      ],
      { kind: 'local' },
    );
    await store.setPeerState('p', {
      down: null,
      assumed: [
        ['a', doc('a', { secret: `${SECRET}-assumed` })],
        ['b', doc('b', { secret: `${SECRET}-b`, note: { deep: SECRET } }, true)],
      ],
    });
    await store.close();
    expect(await filesContaining(dir, SECRET)).toEqual([]);
    expect(await filesContaining(dir, 'visible')).toEqual(['notes.json', 'notes.json.p2psync']);
    const file = JSON.parse(await readFile(path, 'utf8')) as Array<Record<string, string>>;
    expect(file).toEqual([
      { id: 'a', secret: expect.stringMatching(new RegExp(`^${VALUE_PREFIX}`)), title: 'visible' },
    ]);
    // Everything reads back in plaintext with the key alone.
    const again = await reopen();
    expect((await again.get(['a', 'b'])).get('b')).toEqual(
      doc('b', { secret: `${SECRET}-b`, note: { deep: SECRET } }, true),
    );
    expect((await again.getPeerState('p'))!.assumed.get('a')).toEqual(doc('a', { secret: `${SECRET}-assumed` }));
  });

  it('refuses to open without the key, with a wrong key, or with other fields; nothing on disk changes', async () => {
    const store = await create();
    await insert(store, [doc('a', { secret: SECRET })]);
    await store.close();
    const before = await snapshotDir(dir);
    await expect(openStore({ path, watch: false })).rejects.toMatchObject({ code: 'E_KEY_REQUIRED' });
    await expect(openEncrypted({ path }, {})).rejects.toMatchObject({ code: 'E_KEY_REQUIRED' });
    await expect(openEncrypted({ path }, { key: keyText('wrong') })).rejects.toMatchObject({ code: 'E_WRONG_KEY' });
    await expect(openEncrypted({ path }, { key: KEY, fields: ['secret'] })).rejects.toMatchObject({
      code: 'E_BAD_OPTION',
      message: /secret,note/,
    });
    await expect(openEncrypted({ path }, { key: { file: join(dir, 'nokey') } })).rejects.toMatchObject({
      code: 'E_KEY_FILE',
    });
    expect(await snapshotDir(dir)).toEqual(before);
  });

  it('refuses a tampered value or one moved to another document (E_DECRYPT naming both); nothing on disk changes', async () => {
    const store = await create();
    await insert(store, [doc('a', { secret: 'A' }), doc('b', { secret: 'B' })]);
    await store.close();
    const file = JSON.parse(await readFile(path, 'utf8')) as Array<Record<string, string>>;
    const [a, b] = file as [Record<string, string>, Record<string, string>];
    const original = [a.secret, b.secret];
    // Moved: b's ciphertext in a.
    a.secret = original[1]!;
    await writeFile(path, JSON.stringify(file, null, 2) + '\n');
    let before = await snapshotDir(dir);
    await expect(reopen()).rejects.toMatchObject({
      code: 'E_DECRYPT',
      details: { id: 'a', field: 'secret', file: path },
      message: /field "secret" of document "a"/,
    });
    expect(await snapshotDir(dir)).toEqual(before);
    // Tampered: one character of b's ciphertext changed.
    a.secret = original[0]!;
    const s = original[1]!;
    b.secret = s.slice(0, 30) + (s[30] === 'A' ? 'B' : 'A') + s.slice(31);
    await writeFile(path, JSON.stringify(file, null, 2) + '\n');
    before = await snapshotDir(dir);
    await expect(reopen()).rejects.toMatchObject({ code: 'E_DECRYPT', details: { id: 'b', field: 'secret' } });
    expect(await snapshotDir(dir)).toEqual(before);
  });

  it('encrypts plaintext that an outside edit wrote into an encrypted field: at open, and while running', async () => {
    const store = await create();
    await insert(store, [doc('a', { secret: 'A' })]);
    await store.close();
    const file = JSON.parse(await readFile(path, 'utf8')) as Array<Record<string, unknown>>;
    file.push({ id: 'typed', secret: 'typed in an editor' });
    await writeFile(path, JSON.stringify(file, null, 2) + '\n');
    const s1 = await reopen();
    expect((await s1.get(['typed'])).get('typed')).toEqual(doc('typed', { secret: 'typed in an editor' }));
    await s1.flush();
    expect(await readFile(path, 'utf8')).not.toContain('typed in an editor');
    await s1.close();

    const log = new EventLog();
    const live = await reopen({ watch: true, emit: log.push });
    const now = JSON.parse(await readFile(path, 'utf8')) as Array<Record<string, unknown>>;
    now.push({ id: 'live', secret: 'pasted while running' });
    await writeFile(path, JSON.stringify(now, null, 2) + '\n');
    await log.waitFor((e) => e.event === 'outside-edit');
    await eventually(async () => {
      await live.flush();
      return !(await readFile(path, 'utf8')).includes('pasted while running');
    });
    expect((await live.get(['live'])).get('live')).toEqual(doc('live', { secret: 'pasted while running' }));
  });

  it('reports a tampered value that arrives by an outside edit while running, and does not pass it on', async () => {
    const log = new EventLog();
    const store = await track(openEncrypted({ path, watch: true, emit: log.push }, { fields: ['secret'], key: KEY }));
    const seen: DocState[] = [];
    store.changes$.subscribe((c) => seen.push(...c.documents));
    await insert(store, [doc('a', { secret: 'A' })]);
    await store.flush();
    const file = JSON.parse(await readFile(path, 'utf8')) as Array<Record<string, unknown>>;
    file.push({ id: 'bad', secret: `${VALUE_PREFIX}AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA` });
    await writeFile(path, JSON.stringify(file, null, 2) + '\n');
    const err = await log.waitFor((e) => e.event === 'error');
    expect(err).toMatchObject({ code: 'E_DECRYPT', details: { id: 'bad', field: 'secret', file: path } });
    expect(seen.map((d) => d.id)).toEqual(['a']);
    await expect(store.get(['bad'])).rejects.toMatchObject({ code: 'E_DECRYPT' });
  });

  it('refuses --encrypt-fields on a store that already holds plaintext documents', async () => {
    const plain = await track(openStore({ path, watch: false }));
    await insert(plain, [doc('a', { secret: SECRET })]);
    await plain.close();
    const before = await snapshotDir(dir);
    await expect(create()).rejects.toMatchObject({
      code: 'E_BAD_OPTION',
      message: /already holds documents in plaintext/,
    });
    expect(await snapshotDir(dir)).toEqual(before);
    // A key without --encrypt-fields for a store that is not encrypted is a mistake too.
    await expect(reopen()).rejects.toMatchObject({ code: 'E_BAD_OPTION', message: /is not encrypted/ });
  });

  it('leaves documents without the encrypted fields as they are', async () => {
    const store = await create();
    await insert(store, [doc('a', { title: 'no secrets' })]);
    await store.close();
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual([{ id: 'a', title: 'no secrets' }]);
  });
});

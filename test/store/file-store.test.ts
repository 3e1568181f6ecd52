import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import type { SyncEvent } from '../../src/core/events.js';
import type { DocState } from '../../src/core/types.js';
import { doc, insert } from './contract.js';
import { StoreFixture, eventually } from './harness.js';

const ids = (docs: DocState[]): string[] => docs.map((d) => d.id as string);

describe('file stores: files on disk', () => {
  let fx: StoreFixture;
  beforeEach(async () => {
    fx = await StoreFixture.create();
  });
  afterEach(async () => {
    await fx.cleanup();
  });

  it('creates a missing file empty, in each shape', async () => {
    for (const [name, opts, content] of [
      ['a.json', {}, '[]\n'],
      ['b.json', { collection: 'docs' }, '{\n  "docs": []\n}\n'],
      ['c.ndjson', {}, ''],
    ] as const) {
      const s = await fx.open({ path: fx.file(name), watch: false, ...opts });
      expect(await readFile(fx.file(name), 'utf8')).toBe(content);
      await s.close();
    }
  });

  it('writes user fields only, lowdb-style, keeps the file order and drops deleted documents', async () => {
    const path = fx.file('a.json');
    await writeFile(
      path,
      JSON.stringify([
        { id: 'z', n: 1 },
        { id: 'a', n: 2 },
      ]),
    );
    const s = await fx.open({ path, watch: false });
    expect(await s.get(['a'])).toEqual(new Map([['a', doc('a', { n: 2 })]]));
    await insert(s, [doc('m', { deep: { list: [1, { x: null }] } })]);
    await s.bulkWrite([{ document: doc('z', { n: 5 }), expected: doc('z', { n: 1 }) }], { kind: 'local' });
    await s.flush();
    const expected = [
      { id: 'z', n: 5 },
      { id: 'a', n: 2 },
      { id: 'm', deep: { list: [1, { x: null }] } },
    ];
    expect(await readFile(path, 'utf8')).toBe(JSON.stringify(expected, null, 2) + '\n');
    await s.bulkWrite([{ document: doc('a', { n: 2 }, true), expected: doc('a', { n: 2 }) }], { kind: 'local' });
    await s.close();
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual([expected[0], expected[2]]);
  });

  it('with --collection keeps every other member of the object and creates a missing collection', async () => {
    const path = fx.file('db.json');
    const original = { version: 3, users: [{ id: 'u1', name: 'Ada' }], settings: { theme: 'dark', list: [1, 2] } };
    await writeFile(path, JSON.stringify(original));
    const s = await fx.open({ path, watch: false, collection: 'posts' });
    expect(await s.all()).toEqual([]);
    await insert(s, [doc('p1', { title: 'hello' })]);
    await s.close();
    const after = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    expect(after).toEqual({ ...original, posts: [{ id: 'p1', title: 'hello' }] });
    expect(Object.keys(after)).toEqual(['version', 'users', 'settings', 'posts']);
  });

  it('lets two stores own two collections of one file at the same time', async () => {
    const path = fx.file('db.json');
    await writeFile(path, JSON.stringify({ posts: [{ id: 'p1' }], users: [{ id: 'u1' }], other: true }));
    const posts = await fx.open({ path, collection: 'posts', pollIntervalMs: 20 });
    const users = await fx.open({ path, collection: 'users', pollIntervalMs: 20 });
    expect(existsSync(path + '.posts.p2psync') && existsSync(path + '.users.p2psync')).toBe(true);
    await insert(posts, [doc('p2')]);
    await posts.flush();
    await insert(users, [doc('u2')]);
    await users.flush(); // re-reads the file under the write lock first, so p2 survives
    await insert(posts, [doc('p3')]);
    await posts.close();
    await users.close();
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({
      posts: [{ id: 'p1' }, { id: 'p2' }, { id: 'p3' }],
      users: [{ id: 'u1' }, { id: 'u2' }],
      other: true,
    });
  });

  it('keeps NDJSON one document per line and ignores blank lines', async () => {
    const path = fx.file('a.ndjson');
    await writeFile(path, '\n{"id":"b","v":1}\r\n\n   \n{"id":"a"}');
    const s = await fx.open({ path, watch: false });
    expect(ids(await s.all())).toEqual(['a', 'b']);
    await insert(s, [doc('c', { text: 'line\nbreak' })]);
    await s.close();
    expect(await readFile(path, 'utf8')).toBe('{"id":"b","v":1}\n{"id":"a"}\n{"id":"c","text":"line\\nbreak"}\n');
  });

  it('reads an NDJSON file that starts with a byte order mark', async () => {
    const path = fx.file('a.ndjson');
    await writeFile(path, '\ufeff{"id":"a"}\n{"id":"b"}\n');
    const s = await fx.open({ path, watch: false });
    expect(ids(await s.all())).toEqual(['a', 'b']);
    await s.close();
  });

  it('ingests edits made while closed (file replaced wholesale) as creates, updates and deletes with new lwts', async () => {
    const path = fx.file('a.json');
    let s = await fx.open({ path, watch: false });
    await insert(s, [doc('keep', { v: 1 }), doc('change', { v: 1 }), doc('drop', { v: 1 })]);
    const before = await s.changesSince(null, 10);
    await s.close();
    await writeFile(path, JSON.stringify([{ id: 'new' }, { id: 'change', v: 2 }, { id: 'keep', v: 1 }]));
    const events: SyncEvent[] = [];
    s = await fx.open({ path, watch: false, emit: (e) => events.push(e) });
    expect(events).toEqual([{ event: 'outside-edit', store: path, created: 1, updated: 1, deleted: 1 }]);
    const after = await s.changesSince(before.checkpoint, 10);
    expect(after.documents).toEqual([doc('change', { v: 2 }), doc('drop', { v: 1 }, true), doc('new')]);
    await s.close();
    // Recorded: the next open finds nothing new.
    events.length = 0;
    s = await fx.open({ path, watch: false, emit: (e) => events.push(e) });
    expect(events).toEqual([]);
  });

  it('survives a deleted sidecar: documents stay, the token and tombstones are new', async () => {
    const path = fx.file('a.ndjson');
    let s = await fx.open({ path, watch: false, storageToken: 'aaaaaaaaaa' });
    await insert(s, [doc('a'), doc('b')]);
    await s.bulkWrite([{ document: doc('b', {}, true), expected: doc('b') }], { kind: 'local' });
    await s.close();
    await rm(path + '.p2psync');
    s = await fx.open({ path, watch: false });
    expect(s.storageToken).not.toBe('aaaaaaaaaa');
    expect(ids((await s.changesSince(null, 10)).documents)).toEqual(['a']);
  });

  it('recreates a user file deleted while closed from the sidecar instead of deleting every document', async () => {
    const path = fx.file('db.json');
    let s = await fx.open({ path, watch: false, collection: 'notes' });
    await insert(s, [doc('a', { v: 1 }), doc('b')]);
    await s.bulkWrite([{ document: doc('b', {}, true), expected: doc('b') }], { kind: 'local' });
    const feed = await s.changesSince(null, 10);
    await s.close();
    await rm(path);
    const events: SyncEvent[] = [];
    s = await fx.open({ path, watch: false, collection: 'notes', emit: (e) => events.push(e) });
    expect(events).toEqual([]);
    expect(await s.changesSince(null, 10)).toEqual(feed);
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ notes: [{ id: 'a', v: 1 }] });
  });

  it('recreates the sidecar if it is deleted while the store is open', async () => {
    const path = fx.file('a.ndjson');
    let s = await fx.open({ path, watch: false });
    const token = s.storageToken;
    await insert(s, [doc('a')]);
    await s.flush();
    await rm(path + '.p2psync');
    await insert(s, [doc('b')]);
    await s.close();
    s = await fx.open({ path, watch: false });
    expect(s.storageToken).toBe(token);
    expect(ids(await s.all())).toEqual(['a', 'b']);
  });

  it('writes a change after a quiet spell at once, and a live change right after it too', async () => {
    const path = fx.file('a.ndjson');
    await writeFile(path, '{"id":"a"}\n');
    // The rewrites are cheap, the budget of rewriting time covers both (its spacing once spent:
    // test/store/flush-pacer.test.ts).
    const s = await fx.open({ path, watch: false });
    await insert(s, [doc('first')]);
    await eventually(async () => (await readFile(path, 'utf8')).includes('first'));
    await insert(s, [doc('second')]);
    await eventually(async () => (await readFile(path, 'utf8')).includes('second'));
    expect(await readFile(path, 'utf8')).toBe('{"id":"a"}\n{"id":"first"}\n{"id":"second"}\n');
    await s.flush();
  });

  it('writes a change made while a write is in flight as soon as that write ends, with no further flush', async () => {
    const path = fx.file('a.ndjson');
    await writeFile(path, '{"id":"a"}\n');
    const s = await fx.open({ path, watch: false });
    await insert(s, [doc('first')]);
    // The flush queues its start in the mutation queue (after a few microtasks), starts the write there and leaves
    // it with the I/O in flight: the next write, queued behind it, is committed while the first is on its way.
    const flushed = s.flush();
    await new Promise(setImmediate);
    await insert(s, [doc('second')]);
    await flushed;
    // Nobody flushes again: the write after the one in flight was scheduled when it ended.
    await eventually(async () => (await readFile(path, 'utf8')).includes('second'));
    expect(await readFile(path, 'utf8')).toBe('{"id":"a"}\n{"id":"first"}\n{"id":"second"}\n');
    await s.close();
    expect(s.stats.fileWrites).toBe(2);
  });

  it('coalesces a burst of 10,000 writes into a handful of file rewrites', async () => {
    const path = fx.file('a.ndjson');
    const s = await fx.open({ path, watch: false });
    for (let i = 0; i < 10_000; i++)
      await s.bulkWrite([{ document: doc(`d${i}`, { n: i }), expected: null }], {
        kind: 'peer',
        peerToken: 'pppppppppp',
      });
    await s.flush();
    // One rewrite per write would be 10,000; the flush timer makes it a few (bounded loosely: no timing assumption).
    expect(s.stats.fileWrites).toBeLessThan(200);
    expect((await readFile(path, 'utf8')).split('\n').filter(Boolean)).toHaveLength(10_000);
    expect(s.stats.sidecarAppends).toBeLessThan(200);
  });

  it('stores assumed states equal to the documents as markers and compacts a growing journal', async () => {
    const path = fx.file('a.ndjson');
    let s = await fx.open({ path, watch: false, compactMinBytes: 50_000 });
    const docs = Array.from({ length: 2_000 }, (_, i) => doc(`d${i}`, { text: 'x'.repeat(100) }));
    await insert(s, docs);
    await s.flush();
    const size1 = (await stat(path + '.p2psync')).size;
    await s.setPeerState('peer', { assumed: docs.map((d) => [d.id as string, d]) });
    await s.flush();
    const size2 = (await stat(path + '.p2psync')).size;
    expect(size2 - size1).toBeLessThan(2_000 * 20); // markers, not 2,000 bodies of 100+ bytes
    for (let round = 0; round < 20; round++) {
      await s.bulkWrite(
        docs
          .slice(0, 200)
          .map((d) => ({ document: { ...d, round }, expected: round === 0 ? d : { ...d, round: round - 1 } })),
        { kind: 'local' },
      );
      await s.flush();
    }
    expect(s.stats.compactions).toBeGreaterThan(1);
    const expected = await s.getPeerState('peer');
    const feed = await s.changesSince(null, 5_000);
    await s.close();
    expect((await stat(path + '.p2psync')).size).toBeLessThan(4 * size2);
    s = await fx.open({ path, watch: false });
    expect(await s.getPeerState('peer')).toEqual(expected);
    expect((await s.getPeerState('peer'))!.assumed.get('d0')).toEqual(docs[0]);
    expect(await s.changesSince(null, 5_000)).toEqual(feed);
  });

  it('purges tombstones older than tombstoneTtlMs on open', async () => {
    const path = fx.file('a.ndjson');
    let s = await fx.open({ path, watch: false });
    await insert(s, [doc('a'), doc('b')]);
    await s.bulkWrite([{ document: doc('a', {}, true), expected: doc('a') }], { kind: 'local' });
    const lwt = (await s.changesSince(null, 10)).checkpoint!.lwt;
    await s.close();
    s = await fx.open({ path, watch: false, tombstoneTtlMs: 60_000 });
    expect((await s.get(['a'])).get('a')).toEqual(doc('a', {}, true));
    await s.close();
    while (Date.now() <= lwt + 5) await new Promise((r) => setTimeout(r, 2));
    s = await fx.open({ path, watch: false, tombstoneTtlMs: 1 });
    expect(await s.get(['a'])).toEqual(new Map());
    expect(ids((await s.changesSince(null, 10)).documents)).toEqual(['b']);
    await s.close();
    s = await fx.open({ path, watch: false });
    expect(await s.get(['a'])).toEqual(new Map());
  });

  it('lets only one process own a store, and takes over the lock of a dead one', async () => {
    const path = fx.file('a.json');
    const s = await fx.open({ path, watch: false });
    await expect(fx.open({ path, watch: false })).rejects.toMatchObject({
      code: 'E_LOCKED',
      details: { pid: process.pid, owner: true },
    });
    await s.close();
    const again = await fx.open({ path, watch: false });
    await again.close();
    // A lock left behind by a process that no longer exists is stale.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const lock = {
      pid: Number(dead.stdout),
      host: (await import('node:os')).hostname(),
      purpose: 'owner',
      time: Date.now(),
      token: 'x',
    };
    await writeFile(path + '.p2psync.owner', JSON.stringify(lock));
    await writeFile(path + '.p2psync.lock', JSON.stringify({ ...lock, purpose: 'write' }));
    const taken = await fx.open({ path, watch: false });
    await insert(taken, [doc('a')]);
    await taken.close();
    expect(existsSync(path + '.p2psync.owner')).toBe(false);
    expect(existsSync(path + '.p2psync.lock')).toBe(false);
  });
});

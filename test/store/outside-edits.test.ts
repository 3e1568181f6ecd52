import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendFile, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { JSONFile } from 'lowdb/node';
import { Low } from 'lowdb';
import type { StoreChange } from '../../src/core/types.js';
import type { FileStoreOptions } from '../../src/store/open.js';
import { doc, insert } from './contract.js';
import { EventLog, StoreFixture, eventually } from './harness.js';

const isEdit = (e: { event: string }): boolean => e.event === 'outside-edit';

describe('outside edits while a store is open', () => {
  let fx: StoreFixture;
  let log: EventLog;
  beforeEach(async () => {
    fx = await StoreFixture.create();
    log = new EventLog();
  });
  afterEach(async () => {
    await fx.cleanup();
  });

  async function live(name: string, initial: string, options: Partial<FileStoreOptions> = {}) {
    const path = fx.file(name);
    await writeFile(path, initial);
    const store = await fx.open({ path, pollIntervalMs: 200, emit: log.push, ...options });
    const changes: StoreChange[] = [];
    store.changes$.subscribe((c) => changes.push(c));
    return { path, store, changes };
  }

  it('ingests a rewrite by temp file + rename (jq > tmp && mv tmp file) as creates, updates and deletes', async () => {
    const { path, store, changes } = await live(
      'a.json',
      JSON.stringify([
        { id: 'a', v: 1 },
        { id: 'b', v: 1 },
      ]),
    );
    await writeFile(path + '.tmp', JSON.stringify([{ id: 'a', v: 2 }, { id: 'c' }]));
    await rename(path + '.tmp', path);
    expect(await log.waitFor(isEdit)).toEqual({
      event: 'outside-edit',
      store: path,
      created: 1,
      updated: 1,
      deleted: 1,
    });
    expect(changes).toHaveLength(1);
    expect(changes[0]!.origin).toEqual({ kind: 'outside' });
    expect(changes[0]!.documents).toEqual([doc('a', { v: 2 }), doc('b', { v: 1 }, true), doc('c')]);
    expect(await store.get(['a', 'b', 'c'])).toEqual(
      new Map([
        ['a', doc('a', { v: 2 })],
        ['b', doc('b', { v: 1 }, true)],
        ['c', doc('c')],
      ]),
    );
  });

  it('ingests an in-place write', async () => {
    const { path, store } = await live('a.ndjson', '{"id":"a"}\n');
    await writeFile(path, '{"id":"a","edited":true}\n{"id":"b"}\n');
    expect(await log.waitFor(isEdit)).toMatchObject({ created: 1, updated: 1, deleted: 0 });
    expect(await store.all()).toEqual([doc('a', { edited: true }), doc('b')]);
  });

  it('ingests NDJSON appends, and later writes keep the appended lines once', async () => {
    const { path, store } = await live('a.ndjson', '{"id":"a"}\n');
    await appendFile(path, '{"id":"b","by":"script"}\n');
    expect(await log.waitFor(isEdit)).toMatchObject({ created: 1, updated: 0, deleted: 0 });
    await insert(store, [doc('c')]);
    await store.flush();
    expect(await readFile(path, 'utf8')).toBe('{"id":"a"}\n{"id":"b","by":"script"}\n{"id":"c"}\n');
  });

  it('reads appended lines alone only when the file up to them is exactly what it knew', async () => {
    const { path, store } = await live('a.ndjson', '{"id":"a","v":1}\n');
    // Same length as before for the first line, but edited: a real in-place rewrite, not an append.
    await writeFile(path, '{"id":"a","v":2}\n{"id":"b"}\n');
    expect(await log.waitFor(isEdit)).toMatchObject({ created: 1, updated: 1, deleted: 0 });
    expect(await store.all()).toEqual([doc('a', { v: 2 }), doc('b')]);
  });

  it('commits appended lines before proving the rest unchanged, then diffs the rest when it changed too', async () => {
    const { path, store, changes } = await live('a.ndjson', '{"id":"a","v":1}\n');
    // In place, longer, and still ending the old length with a line break: the second line looks appended.
    await writeFile(path, '{"id":"a","v":2}\n{"id":"b"}\n');
    expect(await log.waitFor(isEdit)).toMatchObject({ created: 1, updated: 1, deleted: 0 });
    expect(changes.map((c) => c.documents)).toEqual([[doc('b')], [doc('a', { v: 2 })]]);
    await insert(store, [doc('c')]);
    await store.flush();
    expect(await readFile(path, 'utf8')).toBe('{"id":"a","v":2}\n{"id":"b"}\n{"id":"c"}\n');
    expect(log.events.filter(isEdit)).toHaveLength(1);
  });

  it('reports an appended line that repeats a key, with the line of the first one', async () => {
    const { path, store } = await live('a.ndjson', '{"id":"a"}\n{"id":"b"}\n');
    await appendFile(path, '{"id":"a","again":true}\n');
    expect(await log.waitFor((e) => e.event === 'error')).toMatchObject({
      code: 'E_DUPLICATE_KEY',
      details: { line: 3, firstLine: 1 },
    });
    expect(await store.all()).toEqual([doc('a'), doc('b')]);
  });

  it('does not take a line glued to a last line that had no line break as an append', async () => {
    const { path, store } = await live('a.ndjson', '{"id":"a"}');
    await appendFile(path, '{"id":"b"}\n');
    expect(await log.waitFor((e) => e.event === 'error')).toMatchObject({ code: 'E_PARSE', details: { line: 1 } });
    await writeFile(path, '{"id":"a"}\n{"id":"b"}\n');
    expect(await log.waitFor(isEdit)).toMatchObject({ created: 1 });
    expect(await store.all()).toEqual([doc('a'), doc('b')]);
  });

  it('takes in a series of appends, each once, and keeps them when it writes', async () => {
    const { path, store } = await live('a.ndjson', '');
    for (let i = 0; i < 20; i++) {
      await appendFile(path, `{"id":"s${i}"}\n`);
      if (i % 5 === 0) await eventually(async () => (await store.all()).length === i + 1);
    }
    await eventually(async () => (await store.all()).length === 20);
    await insert(store, [doc('own')]);
    await store.flush();
    const lines = (await readFile(path, 'utf8')).split('\n').filter(Boolean);
    expect(lines).toEqual([...Array.from({ length: 20 }, (_, i) => `{"id":"s${i}"}`), '{"id":"own"}']);
  });

  it('turns documents removed from the file into tombstones with their last body', async () => {
    const { path, store } = await live('a.ndjson', '{"id":"a","t":"x"}\n{"id":"b"}\n');
    await writeFile(path, '{"id":"b"}\n');
    expect(await log.waitFor(isEdit)).toMatchObject({ created: 0, updated: 0, deleted: 1 });
    expect((await store.get(['a'])).get('a')).toEqual(doc('a', { t: 'x' }, true));
    const feed = await store.changesSince(null, 10);
    expect(feed.documents[feed.documents.length - 1]).toEqual(doc('a', { t: 'x' }, true));
  });

  it('never counts its own writes as outside edits', async () => {
    const { path, store } = await live('a.json', '[]', { pollIntervalMs: 20 });
    for (let i = 0; i < 5; i++) {
      await insert(store, [doc(`own${i}`)]);
      await store.flush();
    }
    const text = JSON.parse(await readFile(path, 'utf8')) as unknown[];
    await writeFile(path, JSON.stringify([...text, { id: 'theirs' }]));
    expect(await log.waitFor(isEdit)).toMatchObject({ created: 1, updated: 0, deleted: 0 });
    expect(log.events.filter(isEdit)).toHaveLength(1);
  });

  it('finds edits with the periodic check alone (where fs.watch does not work)', async () => {
    const { path, store } = await live('a.json', '[]', { fsWatch: false, pollIntervalMs: 30 });
    await writeFile(path + '.tmp', '[{"id":"x"}]');
    await rename(path + '.tmp', path);
    await log.waitFor(isEdit);
    expect(await store.all()).toEqual([doc('x')]);
  });

  it('never writes over an edit it has not seen yet: it ingests the edit first', async () => {
    // No watching to speak of: the flush itself must notice the edit.
    const { path, store } = await live('a.json', '[{"id":"a"}]', { fsWatch: false, pollIntervalMs: 600_000 });
    await writeFile(path, '[{"id":"a"},{"id":"theirs"}]');
    await insert(store, [doc('ours')]);
    await store.flush();
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual([{ id: 'a' }, { id: 'theirs' }, { id: 'ours' }]);
    expect(log.events.filter(isEdit)).toEqual([
      { event: 'outside-edit', store: path, created: 1, updated: 0, deleted: 0 },
    ]);
  });

  it('reports a broken file once, writes nothing over it, keeps taking writes, and flushes them once it is repaired', async () => {
    const { path, store, changes } = await live('a.json', '[{"id":"a"}]', { pollIntervalMs: 30 });
    const broken = '[{"id":"a"},\n {"id": }]';
    await writeFile(path, broken);
    expect(await log.waitFor((e) => e.event === 'error')).toMatchObject({
      event: 'error',
      code: 'E_PARSE',
      details: { file: path, line: 2, column: 9 },
    });
    // Writes still commit to the index and the change stream; only the file waits.
    await insert(store, [doc('pending')]);
    expect(changes.at(-1)!.documents).toEqual([doc('pending')]);
    await expect(store.flush()).rejects.toMatchObject({ code: 'E_PARSE' });
    expect(await readFile(path, 'utf8')).toBe(broken);
    expect(log.events.filter((e) => e.event === 'error')).toHaveLength(1);
    await writeFile(path, '[{"id":"a"},{"id":"fixed"}]');
    expect(await log.waitFor(isEdit)).toMatchObject({ created: 1 });
    await store.flush();
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual([{ id: 'a' }, { id: 'fixed' }, { id: 'pending' }]);
  });

  it('waits while the file is missing and ingests it when it comes back', async () => {
    const { path, store } = await live('a.ndjson', '{"id":"a"}\n', { pollIntervalMs: 30 });
    await rm(path);
    expect(await log.waitFor((e) => e.event === 'warning')).toMatchObject({ code: 'E_IO', message: /missing/ });
    await insert(store, [doc('b')]);
    await expect(store.flush()).rejects.toMatchObject({ code: 'E_IO' });
    await writeFile(path, '{"id":"a"}\n{"id":"c"}\n');
    await log.waitFor(isEdit);
    await store.flush();
    expect(await readFile(path, 'utf8')).toBe('{"id":"a"}\n{"id":"c"}\n{"id":"b"}\n');
  });

  it('takes in a series of JSON rewrites, each read against the version before it, and a broken one not at all', async () => {
    const render = (docs: object[]): string => JSON.stringify(docs, null, 2) + '\n';
    let docs: Array<{ id: string; v?: number }> = Array.from({ length: 30 }, (_, i) => ({ id: `d${i}`, v: i }));
    const { path, store } = await live('a.json', render(docs));
    const replace = async (text: string): Promise<void> => {
      await writeFile(path + '.tmp', text);
      await rename(path + '.tmp', path);
    };
    const steps: Array<
      [string, (d: typeof docs) => typeof docs, { created: number; updated: number; deleted: number }]
    > = [
      [
        'update one in the middle',
        (d) => d.map((x) => (x.id === 'd10' ? { ...x, v: -1 } : x)),
        { created: 0, updated: 1, deleted: 0 },
      ],
      ['append two', (d) => [...d, { id: 'n1' }, { id: 'n2', v: 2 }], { created: 2, updated: 0, deleted: 0 }],
      ['insert one at the start', (d) => [{ id: 'first' }, ...d], { created: 1, updated: 0, deleted: 0 }],
      ['delete the last two', (d) => d.slice(0, -2), { created: 0, updated: 0, deleted: 2 }],
      [
        'replace one by another',
        (d) => d.map((x) => (x.id === 'd5' ? { id: 'five' } : x)),
        { created: 1, updated: 0, deleted: 1 },
      ],
      [
        'update the first and the last',
        (d) => d.map((x, i) => (i === 0 || i === d.length - 1 ? { ...x, v: 99 } : x)),
        { created: 0, updated: 2, deleted: 0 },
      ],
    ];
    for (const [what, edit, counts] of steps) {
      const from = log.events.length;
      docs = edit(docs);
      await replace(render(docs));
      expect(await log.waitFor(isEdit, from), what).toMatchObject(counts);
      expect(
        (await store.all()).map(({ _deleted, ...d }) => d),
        what,
      ).toEqual([...docs].sort((a, b) => (a.id < b.id ? -1 : 1)));
    }
    // A rewrite that breaks one document is refused whole, even though the rest of the file is unchanged.
    const from = log.events.length;
    await replace(render(docs).replace('"id": "d20"', '"id": 20'));
    expect(await log.waitFor((e) => e.event === 'error', from)).toMatchObject({ code: 'E_BAD_KEY' });
    await replace(render([...docs, { id: 'after' }]));
    expect(await log.waitFor(isEdit, from)).toMatchObject({ created: 1, updated: 0, deleted: 0 });
  });

  it('shares a file with a lowdb app in both directions', async () => {
    const { path, store } = await live('db.json', JSON.stringify({ posts: [{ id: 'p1' }], meta: { n: 1 } }), {
      collection: 'posts',
    });
    const db = new Low(new JSONFile<{ posts: Array<{ id: string; by?: string }>; meta: { n: number } }>(path), {
      posts: [],
      meta: { n: 0 },
    });
    await db.read();
    db.data.posts.push({ id: 'p2', by: 'app' });
    db.data.meta.n = 2;
    await db.write();
    expect(await log.waitFor(isEdit)).toMatchObject({ created: 1 });
    await insert(store, [doc('p3')]);
    await store.flush();
    await db.read();
    expect(db.data).toEqual({ posts: [{ id: 'p1' }, { id: 'p2', by: 'app' }, { id: 'p3' }], meta: { n: 2 } });
    await eventually(async () => (await store.all()).length === 3);
  });
});

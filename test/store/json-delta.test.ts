import { mkdtemp, open, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DocState } from '../../src/core/types.js';
import { fingerprintOf } from '../../src/store/fs-util.js';
import {
  commonPrefix,
  commonSuffix,
  readDelta,
  scanArray,
  scanElements,
  type JsonImage,
} from '../../src/store/json-delta.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'p2psync-json-delta-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** lowdb's way of writing a JSON file. */
const render = (docs: readonly unknown[]): string => JSON.stringify(docs, null, 2) + '\n';

/** The image of `docs` written to a file (kept open, as the store keeps it), with fresh objects as "known" docs. */
async function imageOf(path: string, docs: readonly object[]): Promise<JsonImage> {
  await writeFile(path, render(docs));
  const bytes = Buffer.from(render(docs));
  const ranges = scanArray(bytes)!;
  const handle = await open(path, 'r');
  const version = { ...fingerprintOf(await handle.stat()), hash: 'h' };
  const known = docs.map((d) => ({ ...d, _deleted: false }) as DocState);
  return {
    handle,
    version,
    open: ranges.open,
    close: ranges.close,
    starts: Float64Array.from(ranges.starts),
    ends: Float64Array.from(ranges.ends),
    ids: known.map((d) => d.id as string),
    docs: known,
  };
}

/** Replaces the file by rename, as lowdb does, and returns the new bytes. */
async function replace(path: string, text: string): Promise<Buffer> {
  await writeFile(path + '.tmp', text);
  await rename(path + '.tmp', path);
  return Buffer.from(text);
}

const plain = (docs: Iterable<DocState>): object[] =>
  [...docs].map((d) => {
    const { _deleted, ...rest } = d;
    return rest;
  });

describe('scanning a JSON array', () => {
  it('finds each element of a file lowdb wrote, and of a compact one', () => {
    const docs = [{ id: 'a', s: 'x,}]"\\' }, { id: 'b', n: [1, { c: '{' }] }, { id: 'c' }];
    for (const text of [render(docs), JSON.stringify(docs), '\ufeff  ' + JSON.stringify(docs) + ' \n']) {
      const buf = Buffer.from(text);
      const r = scanArray(buf)!;
      expect(r.starts.map((s, i) => JSON.parse(buf.toString('utf8', s, r.ends[i])))).toEqual(docs);
      expect(buf[r.open]).toBe(0x5b);
      expect(buf[r.close]).toBe(0x5d);
    }
    expect(scanArray(Buffer.from('[]'))).toEqual({ open: 0, close: 1, starts: [], ends: [] });
  });

  it('is unsure of anything but an array of objects with commas between them', () => {
    for (const text of ['{}', '[1]', '[{},]', '[,{}]', '[{}{}]', '[{"a":"}]', '[{}] x', '[{}', '']) {
      expect(scanArray(Buffer.from(text)), text).toBeUndefined();
    }
  });

  it('checks a run between kept elements: commas where elements meet, none dangling', () => {
    const run = (t: string, after: boolean, before: boolean) =>
      scanElements(Buffer.from(t), 0, t.length, after, before);
    expect(run(',', true, true)?.starts).toEqual([]);
    expect(run(' , {"a":1} ,\n', true, true)?.starts).toEqual([3]);
    expect(run('', true, true)).toBeUndefined(); // two elements with nothing between them
    expect(run(',{}', true, true)).toBeUndefined(); // no comma before the next kept element
    expect(run(',{}', true, false)?.starts).toEqual([1]);
    expect(run(',', true, false)).toBeUndefined(); // a trailing comma before `]`
    expect(run('{},', false, true)?.starts).toEqual([0]);
    expect(run('', false, false)?.starts).toEqual([]);
    expect(run('{},', false, false)).toBeUndefined();
  });

  it('finds where two buffers start and stop differing, across compare blocks', () => {
    const a = Buffer.alloc(200_000, 0x61);
    const b = Buffer.from(a);
    b[150_001] = 0x62;
    expect(commonPrefix(a, b)).toBe(150_001);
    expect(commonSuffix(a, b, 200_000)).toBe(200_000 - 150_002);
    expect(commonPrefix(a, a.subarray(0, 70_000))).toBe(70_000);
    expect(commonSuffix(a, a.subarray(0, 70_000), 10)).toBe(10);
  });
});

describe('reading a new version against the image of the last one', () => {
  it('parses only what changed and keeps the known objects of the documents that did not', async () => {
    const path = join(dir, 'keep.json');
    const docs = Array.from({ length: 50 }, (_, i) => ({ id: `d${i}`, n: i, tag: 'same' }));
    // One change in the middle (an update and a delete), or documents added at the end (lowdb's push).
    const edits: Array<[object[], string[], string[]]> = [
      [[...docs.slice(0, 20), { id: 'd20', n: 20, tag: 'changed' }, ...docs.slice(22)], ['d20'], ['d20', 'd21']],
      [[...docs, { id: 'new' }, { id: 'newer' }], ['new', 'newer'], []],
    ];
    for (const [next, changed, removed] of edits) {
      const image = await imageOf(path, docs);
      try {
        const r = (await readDelta(image, await replace(path, render(next)), 'id'))!;
        expect(plain(r.docs.values())).toEqual(next);
        expect([...r.changed.keys()]).toEqual(changed);
        expect(r.removed).toEqual(removed);
        // Unchanged documents are the image's very objects (so the diff compares them by identity).
        for (let i = 0; i < 50; i++) if (i < 20 || i > 21) expect(r.docs.get(`d${i}`)).toBe(image.docs[i]);
        const bytes = Buffer.from(render(next));
        const at = r.ranges.starts.map((s, i) => JSON.parse(bytes.toString('utf8', s, r.ranges.ends[i])));
        expect(at).toEqual(next);
      } finally {
        await image.handle.close();
      }
    }
  });

  it('gives up on what the ordinary read must judge: bad documents, repeated keys, a changed frame', async () => {
    const path = join(dir, 'refuse.json');
    const docs = [{ id: 'a' }, { id: 'b' }, { id: 'c' }];
    const cases = [
      render([{ id: 'a' }, { id: 'b' }, { id: 'a' }]), // a repeated key
      render([{ id: 'a' }, { id: 'b', _rev: '1-x' }, { id: 'c' }]), // a reserved field
      render([{ id: 'a' }, { nokey: 1 }, { id: 'c' }]),
      render([{ id: 'a' }, 7, { id: 'c' }]),
      render(docs).replace('"b"\n  },', '"b"\n  },,'), // a syntax error between documents
      render(docs).replace('"b"', '"b\u0000'), // a string left open: the rest of the file is no longer the same
      '{"docs": ' + render(docs) + '}',
      render(docs) + 'x',
    ];
    for (const text of cases) {
      const image = await imageOf(path, docs);
      try {
        expect(await readDelta(image, await replace(path, text), 'id'), text).toBeUndefined();
      } finally {
        await image.handle.close();
      }
    }
  });

  it('gives up when the version it describes was modified in place', async () => {
    const path = join(dir, 'in-place.json');
    const docs = [{ id: 'a' }, { id: 'b' }];
    const image = await imageOf(path, docs);
    try {
      const text = render([{ id: 'a' }, { id: 'B' }]);
      await writeFile(path, text); // same inode: the image's version is gone
      expect((await stat(path)).ino).toBe(image.version.ino);
      expect(await readDelta(image, Buffer.from(text), 'id')).toBeUndefined();
    } finally {
      await image.handle.close();
    }
  });

  it('reads any edit of the array exactly as a whole parse does (property)', async () => {
    const path = join(dir, 'prop.json');
    const doc = fc.record({
      id: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'),
      v: fc.oneof(fc.string(), fc.integer()),
    });
    const docsArb = fc.uniqueArray(doc, { selector: (d) => d.id, maxLength: 6 });
    const textArb = (docs: object[]) =>
      fc.constantFrom(render(docs), JSON.stringify(docs), JSON.stringify(docs, null, 1), JSON.stringify(docs) + '\n');
    await fc.assert(
      fc.asyncProperty(
        docsArb.chain((before) => docsArb.chain((after) => fc.tuple(fc.constant(before), textArb(after)))),
        async ([before, text]) => {
          const image = await imageOf(path, before);
          try {
            const r = await readDelta(image, await replace(path, text), 'id');
            // It may decline (the caller then parses the whole file), but not a file lowdb wrote, and what it reads
            // must be the file.
            const after = JSON.parse(text) as object[];
            if (text === render(after)) expect(r).toBeDefined();
            if (r) expect(plain(r.docs.values())).toEqual(after);
          } finally {
            await image.handle.close();
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

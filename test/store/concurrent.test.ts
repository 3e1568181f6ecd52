import { describe, expect, it } from 'vitest';
import { readFile, writeFile } from 'node:fs/promises';
import { putDocuments, removeDocuments } from '../../src/store/crud.js';
import { openStore } from '../../src/store/open.js';
import { WriterProcess, writerFixture } from './child.js';

const range = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
const sorted = (ids: Iterable<string>): string[] => [...ids].sort();

describe('several processes writing one store', () => {
  const w = writerFixture();

  it('CRUD writes while another process owns the store (like join): no update lost in either direction', async () => {
    const path = w.fx.file('shared.json');
    await writeFile(path, JSON.stringify(range('seed', 5).map((id) => ({ id }))));
    const owner = new WriterProcess(['owner', path, '300']);
    await owner.waitForLine((l) => l === 'ready');
    const vias = new Set<string>();
    for (let i = 0; i < 100; i++) {
      vias.add((await putDocuments({ path }, [{ id: `g-${i}`, n: i, _deleted: false }])).via);
      if (i === 50)
        expect(await removeDocuments({ path }, ['seed-0'])).toEqual({ removed: ['seed-0'], missing: [], via: 'file' });
    }
    expect([...vias]).toEqual(['file']); // the owner process held the store throughout
    await owner.waitForLine((l) => l === 'wrote');
    owner.child.stdin!.end();
    await owner.waitForLine((l) => l === 'closed');
    expect((await owner.exited).code).toBe(0);

    const expected = sorted([...range('o', 300), ...range('g', 100), ...range('seed', 5).slice(1)]);
    const inFile = (JSON.parse(await readFile(path, 'utf8')) as Array<{ id: string }>).map((d) => d.id);
    expect(sorted(inFile)).toEqual(expected);
    const store = await w.fx.open({ path, watch: false });
    expect(sorted((await store.all()).map((d) => d.id as string))).toEqual(expected);
    expect((await store.get(['seed-0'])).get('seed-0')).toEqual({ id: 'seed-0', _deleted: true });
  });

  it('processes that take turns owning the store and editing its file lose nothing', async () => {
    const path = w.fx.file('shared.ndjson');
    const a = new WriterProcess(['crud', path, 'a', '60']);
    const b = new WriterProcess(['crud', path, 'b', '60']);
    for (let i = 0; i < 60; i++) await putDocuments({ path }, [{ id: `c-${i}`, _deleted: false }]);
    await a.waitForLine((l) => l === 'done');
    await b.waitForLine((l) => l === 'done');
    const expected = sorted([...range('a', 60), ...range('b', 60), ...range('c', 60)]);
    const lines = (await readFile(path, 'utf8')).split('\n').filter(Boolean);
    expect(sorted(lines.map((l) => (JSON.parse(l) as { id: string }).id))).toEqual(expected);
    const store = await openStore({ path, watch: false });
    try {
      expect(sorted((await store.all()).map((d) => d.id as string))).toEqual(expected);
    } finally {
      await store.close();
    }
  });
});

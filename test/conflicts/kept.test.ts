import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileKeptVersions } from '../../src/conflicts/kept-file.js';
import { MemoryKeptVersions, type KeptVersionStore } from '../../src/conflicts/kept.js';
import type { KeptVersion } from '../../src/core/conflicts.js';

let n = 0;
const version = (id: string, v: number): KeptVersion => ({
  vid: `v${++n}`,
  id,
  time: new Date(1_700_000_000_000 + n).toISOString(),
  peer: 'peer-token',
  strategy: 'master',
  side: 'local',
  document: { id, v, _deleted: false },
});

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'p2psync-kept-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

// One contract, run against both implementations.
describe.each([
  { name: 'memory', make: async (limit: number): Promise<KeptVersionStore> => new MemoryKeptVersions(limit) },
  {
    name: 'file',
    make: async (limit: number): Promise<KeptVersionStore> =>
      FileKeptVersions.open(join(dir, 'x.json.p2psync.conflicts'), { limit }),
  },
])('$name kept versions', ({ make }) => {
  it('keeps versions per document, oldest first, documents in id order', async () => {
    const k = await make(10);
    const [a1, b1, a2] = [version('a', 1), version('b', 1), version('a', 2)];
    await k.keep([a1, b1]);
    await k.keep([a2]);
    expect([...(await k.list())]).toEqual([
      ['a', [a1, a2]],
      ['b', [b1]],
    ]);
    await k.close();
  });

  it('drops the oldest beyond the limit', async () => {
    const k = await make(3);
    const vs = [1, 2, 3, 4, 5].map((v) => version('a', v));
    for (const v of vs) await k.keep([v]);
    expect((await k.list()).get('a')!.map((v) => v.document.v)).toEqual([3, 4, 5]);
    await k.close();
  });

  it('clears named versions only', async () => {
    const k = await make(10);
    const [a1, a2, b1] = [version('a', 1), version('a', 2), version('b', 1)];
    await k.keep([a1, a2, b1]);
    await k.clear('a', [a1.vid]);
    expect((await k.list()).get('a')).toEqual([a2]);
    await k.clear('a', [a2.vid, 'unknown']);
    expect([...(await k.list()).keys()]).toEqual(['b']);
    await k.close();
  });
});

describe('the kept-versions journal', () => {
  const path = (): string => join(dir, 'notes.json.p2psync.conflicts');

  it("survives a reopen, and another process's clears are seen by the limit (they only shorten lists)", async () => {
    const a = await FileKeptVersions.open(path(), { limit: 2 });
    const [v1, v2] = [version('a', 1), version('a', 2)];
    await a.keep([v1, v2]);
    const b = await FileKeptVersions.open(path(), { limit: 2 });
    expect((await b.list()).get('a')).toEqual([v1, v2]);
    await b.clear('a', [v1.vid, v2.vid]);
    // The first instance still thinks both are there; adding two more must keep exactly the two new ones.
    const [v3, v4] = [version('a', 3), version('a', 4)];
    await a.keep([v3]);
    await a.keep([v4]);
    expect((await a.list()).get('a')).toEqual([v3, v4]);
  });

  it('ignores a torn last line and refuses a damaged one in the middle', async () => {
    const k = await FileKeptVersions.open(path(), { limit: 10 });
    const v1 = version('a', 1);
    await k.keep([v1]);
    await appendFile(path(), '{"t":"k","id":"a","vid":"torn","v":{"vi');
    expect((await k.list()).get('a')).toEqual([v1]);
    // The next append cuts the torn line off rather than gluing itself to it.
    const v2 = version('a', 2);
    await k.keep([v2]);
    expect((await k.list()).get('a')).toEqual([v1, v2]);
    await writeFile(path(), (await readFile(path(), 'utf8')) + '{"t":"k"}\n' + '{"t":"c","id":"a","vids":[]}\n');
    await expect(k.list()).rejects.toMatchObject({ code: 'E_SIDECAR' });
  });

  it('refuses a file that is not a journal', async () => {
    await writeFile(path(), '{"something":"else"}\n');
    await expect(FileKeptVersions.open(path(), { limit: 10 })).rejects.toMatchObject({ code: 'E_SIDECAR' });
  });

  it('rewrites itself once mostly superseded, keeping exactly the live versions', async () => {
    const k = await FileKeptVersions.open(path(), { limit: 1 });
    const big = 'x'.repeat(2_000);
    let last: KeptVersion | undefined;
    for (let i = 0; i < 300; i++) {
      last = { ...version('a', i), document: { id: 'a', v: i, big, _deleted: false } };
      await k.keep([last]);
    }
    const text = await readFile(path(), 'utf8');
    // 300 versions of 2 KB each would be 600 KB; compaction kept it well below.
    expect(text.length).toBeLessThan(400_000);
    expect((await k.list()).get('a')).toEqual([last]);
    const reopened = await FileKeptVersions.open(path(), { limit: 1 });
    expect((await reopened.list()).get('a')).toEqual([last]);
  });

  it('keeps concurrent calls in one append each, none lost', async () => {
    const k = await FileKeptVersions.open(path(), { limit: 100 });
    const vs = Array.from({ length: 50 }, (_, i) => version(`d${i % 5}`, i));
    await Promise.all(vs.map((v) => k.keep([v])));
    const all = [...(await k.list()).values()].flat();
    expect(all.map((v) => v.vid).sort()).toEqual(vs.map((v) => v.vid).sort());
  });
});

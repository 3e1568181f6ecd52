// End to end: two real `p2psync join` processes resolve offline edits of the same documents with `--conflict merge`
// and with a `--conflict-handler` module; the fork keeps the losing versions, and `p2psync conflicts` shows them and
// writes one back while both peers run.
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import {
  FORK_TOKEN,
  MASTER_TOKEN,
  crud,
  e2eFixture,
  putDocs,
  readDocs,
  startPeer,
  waitConverged,
  waitUntil,
  writeDocsFile,
} from '../helpers/e2e.js';
import type { CliEvent } from '../helpers/spawn.js';

const { temp, signals } = e2eFixture();
const CONNECT_MS = 20_000;
const json = (stdout: string): Array<Record<string, unknown>> =>
  stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('conflicts between two processes', () => {
  it('merge: offline edits merge per field, the fork keeps its losing version, conflicts resolve writes it back live', async () => {
    const dir = await temp.make();
    const fileA = join(dir, 'a.json');
    const fileB = join(dir, 'b.ndjson');
    const base = { id: 'n1', title: 'Plan', tags: ['a'], done: false };
    await writeDocsFile(fileA, [base, { id: 'n2', v: 1 }]);
    await writeDocsFile(fileB, [base, { id: 'n2', v: 1 }]);
    const sig = await signals.start();
    const merge = ['--conflict', 'merge'];
    const a = await startPeer({ store: fileA, signal: sig.url, token: MASTER_TOKEN, extra: merge });
    let b = await startPeer({ store: fileB, signal: sig.url, token: FORK_TOKEN, extra: merge });
    await b.waitFor('synced', CONNECT_MS);
    await b.stop();

    // Apart: A (the master) changes title and done; B (the fork) title and tags.
    expect((await putDocs(fileA, [{ ...base, title: 'Plan B', done: true }])).code).toBe(0);
    expect((await putDocs(fileB, [{ ...base, title: 'Plan C', tags: ['a', 'b'] }])).code).toBe(0);
    b = await startPeer({ store: fileB, signal: sig.url, token: FORK_TOKEN, extra: merge });
    const conflict = (await b.waitFor('conflict', CONNECT_MS)) as CliEvent;
    expect(conflict).toMatchObject({
      id: 'n1',
      strategy: 'merge',
      winner: 'merged',
      kept: [{ side: 'local', fields: ['title'] }],
    });
    const merged = { id: 'n1', title: 'Plan B', tags: ['a', 'b'], done: true };
    expect((await waitConverged([fileA, fileB], 2)).get('n1')).toEqual(merged);
    // Only the fork resolves, so only it kept anything.
    expect(a.events.filter((e) => e.event === 'conflict')).toEqual([]);

    const ls = await crud(['conflicts', 'ls', '--store', fileB, '--json']);
    expect(json(ls.stdout)).toMatchObject([{ event: 'conflicted', id: 'n1', versions: 1 }]);
    expect(json((await crud(['conflicts', 'ls', '--store', fileA, '--json'])).stdout)).toEqual([]);
    const show = await crud(['conflicts', 'show', '--store', fileB, 'n1', '--json']);
    expect(json(show.stdout)).toMatchObject([
      {
        event: 'kept-versions',
        current: merged,
        versions: [
          {
            n: 1,
            strategy: 'merge',
            side: 'local',
            peer: MASTER_TOKEN,
            fields: ['title'],
            document: { ...base, title: 'Plan C', tags: ['a', 'b'] },
          },
        ],
      },
    ]);

    // Written back while both run: a new local write on B that replicates to A.
    const resolve = await crud(['conflicts', 'resolve', '--store', fileB, 'n1', '--use', '1', '--json']);
    expect(resolve.code, resolve.stderr).toBe(0);
    await waitUntil(
      async () =>
        JSON.stringify((await readDocs(fileA)).get('n1')) ===
        JSON.stringify({ ...base, title: 'Plan C', tags: ['a', 'b'] }),
    );
    expect(json((await crud(['conflicts', 'ls', '--store', fileB, '--json'])).stdout)).toEqual([]);
    expect([...a.events, ...b.events].filter((e) => e.event === 'error')).toEqual([]);
  });

  it('a handler that throws for one document: an error event for it, the document stays, the others replicate', async () => {
    const dir = await temp.make();
    const handler = join(dir, 'handler.mjs');
    await writeFile(
      handler,
      `export default {
  isEqual: (a, b) => JSON.stringify(a) === JSON.stringify(b),
  resolve: ({ newDocumentState: mine, realMasterState: theirs }) => {
    if (mine.id === 'bad') throw new Error('refusing ' + mine.id);
    return { ...theirs, v: Math.max(mine.v, theirs.v) };
  },
};
`,
    );
    const fileA = join(dir, 'a.json');
    const fileB = join(dir, 'b.json');
    const seed = [
      { id: 'bad', v: 1 },
      { id: 'good', v: 1 },
    ];
    await writeDocsFile(fileA, seed);
    await writeDocsFile(fileB, seed);
    const sig = await signals.start();
    const extra = ['--conflict-handler', handler];
    const a = await startPeer({ store: fileA, signal: sig.url, token: MASTER_TOKEN, extra });
    let b = await startPeer({ store: fileB, signal: sig.url, token: FORK_TOKEN, extra });
    await b.waitFor('synced', CONNECT_MS);
    await b.stop();
    await putDocs(fileA, [
      { id: 'bad', v: 2 },
      { id: 'good', v: 2 },
    ]);
    await putDocs(fileB, [
      { id: 'bad', v: 3 },
      { id: 'good', v: 3 },
    ]);
    b = await startPeer({ store: fileB, signal: sig.url, token: FORK_TOKEN, extra });
    const error = await b.waitFor('error', CONNECT_MS);
    expect(error).toMatchObject({ code: 'E_CONFLICT_HANDLER', details: { file: handler, id: 'bad' } });
    expect(String(error.message)).toMatch(/resolve threw: refusing bad/);
    // good: resolved by the handler (the larger v, 3) on both sides; bad: left as each side had it.
    await waitUntil(async () => (await readDocs(fileA)).get('good')?.v === 3);
    expect((await readDocs(fileB)).get('good')).toEqual({ id: 'good', v: 3 });
    expect((await readDocs(fileB)).get('bad')).toEqual({ id: 'bad', v: 3 });
    expect((await readDocs(fileA)).get('bad')).toEqual({ id: 'bad', v: 2 });
    expect(b.child.exitCode).toBeNull();
    expect(a.events.filter((e) => e.event === 'error')).toEqual([]);
  });
});

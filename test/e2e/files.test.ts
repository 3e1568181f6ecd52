import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  FORK_TOKEN,
  MASTER_TOKEN,
  makeDoc,
  readDocs,
  startPeer,
  sumEvents,
  waitAfter,
  waitConverged,
  waitUntil,
  writeDocsFile,
  e2eFixture,
} from '../helpers/e2e.js';

const { temp, signals } = e2eFixture();

const CONNECT_MS = 20_000;

/** A document of well over 1 MB: a long multi-byte string (chunks must respect UTF-8 sizes) and deep-ish structure. */
function bigDoc(id: string, seed: number): Record<string, unknown> {
  return {
    id,
    text: `${'é€😀'.repeat(60_000)}|${'plain ascii '.repeat(50_000)}|${seed}`,
    rows: Array.from({ length: 4_000 }, (_, i) => ({
      i,
      label: `row ${i} of ${id}`,
      flags: [i % 2 === 0, null, seed],
    })),
    nested: { a: { b: { c: { d: ['deep', { e: seed }] } } } },
  };
}

describe('files', () => {
  it('documents over 1 MB replicate intact in both directions', async () => {
    const dir = await temp.make();
    const fileA = join(dir, 'a.json');
    const fileB = join(dir, 'b.ndjson');
    const fromA = bigDoc('big-a', 1);
    const fromB = bigDoc('big-b', 2);
    expect(JSON.stringify(fromA).length).toBeGreaterThan(1_000_000);
    expect(Buffer.byteLength(JSON.stringify(fromB))).toBeGreaterThan(1_048_576);
    await writeDocsFile(fileA, [fromA, makeDoc('small', 1)]);
    await writeDocsFile(fileB, [fromB]);
    const sig = await signals.start();
    const [a, b] = await Promise.all([
      startPeer({ store: fileA, signal: sig.url, token: MASTER_TOKEN }),
      startPeer({ store: fileB, signal: sig.url, token: FORK_TOKEN }),
    ]);
    // Master to fork in pages, fork to master in pushes: each far over one frame, so chunked.
    await Promise.all([a.waitFor('synced', CONNECT_MS), b.waitFor('synced', CONNECT_MS)]);
    await waitUntil(async () => (await readDocs(fileA)).size === 3 && (await readDocs(fileB)).size === 3);
    const [inA, inB] = await Promise.all([readDocs(fileA), readDocs(fileB)]);
    expect(inB.get('big-a')).toEqual(fromA);
    expect(inA.get('big-b')).toEqual(fromB);
    expect(inA.get('big-a')).toEqual(fromA);
    expect(inB.get('big-b')).toEqual(fromB);
    expect(inB.get('small-00000001')).toEqual(makeDoc('small', 1));
    for (const p of [a, b]) expect(p.events.filter((e) => e.event === 'error' || e.event === 'warning')).toEqual([]);
  });

  it('outside edits (a rewrite by rename on one side, an NDJSON append on the other) reach the other file', async () => {
    const dir = await temp.make();
    const fileA = join(dir, 'a.json');
    const fileB = join(dir, 'b.ndjson');
    await writeDocsFile(
      fileA,
      [0, 1, 2, 3].map((n) => makeDoc('a', n)),
    );
    await writeDocsFile(
      fileB,
      [0, 1].map((n) => makeDoc('b', n)),
    );
    const sig = await signals.start();
    const [a, b] = await Promise.all([
      startPeer({ store: fileA, signal: sig.url }),
      startPeer({ store: fileB, signal: sig.url }),
    ]);
    await Promise.all([a.waitFor('synced', CONNECT_MS), b.waitFor('synced', CONNECT_MS)]);
    await waitConverged([fileA, fileB], 6);

    // Like `jq ... > tmp && mv tmp a.json`: one document changed, one removed, one added.
    let markA = a.events.length;
    const current = JSON.parse(await readFile(fileA, 'utf8')) as Array<Record<string, unknown>>;
    const edited = current
      .filter((d) => d.id !== 'a-00000002')
      .map((d) => (d.id === 'b-00000001' ? { ...d, title: 'edited outside' } : d))
      .concat([{ id: 'added-in-a', via: 'rename' }]);
    await writeDocsFile(fileA, edited);
    await waitAfter(a, markA, 'outside-edit');
    await waitUntil(async () => {
      const inB = await readDocs(fileB);
      return inB.has('added-in-a') && !inB.has('a-00000002') && inB.get('b-00000001')?.title === 'edited outside';
    });
    const afterRename = await waitConverged([fileA, fileB], 6);
    expect(afterRename.get('added-in-a')).toEqual({ id: 'added-in-a', via: 'rename' });
    const editsA = a.events.slice(markA);
    expect([
      sumEvents(editsA, 'outside-edit', 'created'),
      sumEvents(editsA, 'outside-edit', 'updated'),
      sumEvents(editsA, 'outside-edit', 'deleted'),
    ]).toEqual([1, 1, 1]);

    // Like `echo '{...}' >> b.ndjson`: an append.
    const markB = b.events.length;
    markA = a.events.length;
    await appendFile(fileB, `${JSON.stringify({ id: 'appended-in-b', via: 'append', list: [1, 2] })}\n`);
    await waitAfter(b, markB, 'outside-edit');
    await waitUntil(async () => (await readDocs(fileA)).has('appended-in-b'));
    const final = await waitConverged([fileA, fileB], 7);
    expect(final.get('appended-in-b')).toEqual({ id: 'appended-in-b', via: 'append', list: [1, 2] });
    expect(sumEvents(b.events.slice(markB), 'outside-edit', 'created')).toBe(1);
    // The peer's own rewrite of its file, carrying the appended document, is not taken for an outside edit.
    expect(sumEvents(a.events.slice(markA), 'outside-edit', 'created')).toBe(0);
    for (const p of [a, b]) expect(p.events.filter((e) => e.event === 'error')).toEqual([]);
  });
});

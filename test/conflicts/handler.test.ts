import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConflictHandler } from '../../src/conflicts/handler.js';
import type { ConflictInput } from '../../src/replication/conflict.js';
import type { DocState } from '../../src/core/types.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'p2psync-handler-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function module(name: string, source: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, source);
  return file;
}

const d = (fields: Record<string, unknown>, deleted = false): DocState =>
  ({ id: 'x', ...fields, _deleted: deleted }) as DocState;
const input = (): ConflictInput => ({
  newDocumentState: d({ n: 1 }),
  realMasterState: d({ n: 2 }),
  assumedMasterState: d({ n: 0 }),
});

const SUM = `export default {
  isEqual: (a, b, ctx) => JSON.stringify(a) === JSON.stringify(b),
  resolve: async (i, ctx) => ({ ...i.realMasterState, n: i.newDocumentState.n + i.realMasterState.n, ctx, base: i.assumedMasterState?.n }),
};`;

describe('--conflict-handler modules', () => {
  it("loads a default export; resolve may be async and gets RxDB's context string", async () => {
    const s = await loadConflictHandler(await module('sum.mjs', SUM), 'id');
    expect(await s.resolve(input())).toEqual(d({ n: 3, ctx: 'replication-resolve-conflict', base: 0 }));
  });

  it("loads a named conflictHandler export (an RxDB app's handler module unchanged)", async () => {
    const file = await module(
      'named.mjs',
      `export const conflictHandler = { isEqual: () => false, resolve: (i) => i.newDocumentState };`,
    );
    const s = await loadConflictHandler(file, 'id');
    expect(await s.resolve(input())).toEqual(d({ n: 1 }));
    // The fork's own state won: the master's version is what the resolution discarded.
    expect(s.discarded!(input(), d({ n: 1 }))).toEqual([{ side: 'remote' }]);
  });

  it('when isEqual calls the states equal, the master state is taken without resolve', async () => {
    const file = await module(
      'eq.mjs',
      `export default { isEqual: () => true, resolve: () => { throw new Error('not called'); } };`,
    );
    const s = await loadConflictHandler(file, 'id');
    expect(await s.resolve(input())).toEqual(d({ n: 2 }));
  });

  it.each([
    ['a missing file', undefined, /cannot load the module/],
    ['a syntax error', 'export default {', /cannot load the module/],
    ['a module that throws on import', 'throw new Error("boom at import");', /boom at import/],
    ['no handler export', 'export const x = 1;', /export an object with isEqual/],
    ['resolve missing', 'export default { isEqual: () => true };', /export an object with isEqual/],
    ['isEqual not a function', 'export default { isEqual: 1, resolve: () => null };', /export an object with isEqual/],
  ])('refuses %s at start-up with E_CONFLICT_HANDLER naming the file', async (_what, source, message) => {
    const file = source === undefined ? join(dir, 'missing.mjs') : await module('bad.mjs', source);
    const err = await loadConflictHandler(file, 'id').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_CONFLICT_HANDLER', details: { file } });
    expect((err as Error).message).toContain(file);
    expect((err as Error).message).toMatch(message);
  });

  it.each([
    ['resolve throws', 'resolve: () => { throw new Error("nope"); }', /resolve threw: nope/],
    ['resolve rejects', 'resolve: async () => { throw new Error("later"); }', /resolve threw: later/],
    ['resolve returns null', 'resolve: () => null', /not a document/],
    ['resolve returns a string', 'resolve: () => "x"', /not a document/],
    ['resolve returns another id', 'resolve: (i) => ({ ...i.realMasterState, id: "y" })', /with id "y"/],
    ['resolve returns a bad _deleted', 'resolve: (i) => ({ ...i.realMasterState, _deleted: "yes" })', /_deleted/],
    [
      'resolve returns a cycle',
      'resolve: (i) => { const o = { ...i.realMasterState }; o.self = o; return o; }',
      /not JSON/,
    ],
    [
      'isEqual throws',
      'isEqual: () => { throw new Error("eq"); }, resolve: (i) => i.realMasterState',
      /isEqual threw: eq/,
    ],
    ['isEqual is async', 'isEqual: async () => false, resolve: (i) => i.realMasterState', /not a boolean/],
  ])('at run time, %s: an E_CONFLICT_HANDLER error for that document', async (_what, body, message) => {
    const src = body.startsWith('isEqual')
      ? `export default { ${body} };`
      : `export default { isEqual: () => false, ${body} };`;
    const s = await loadConflictHandler(await module('rt.mjs', src), 'id');
    const err = await Promise.resolve()
      .then(() => s.resolve(input()))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_CONFLICT_HANDLER', details: { id: 'x' } });
    expect((err as Error).message).toMatch(message);
  });

  it("a handler that mutates its inputs cannot change replication's states", async () => {
    const file = await module(
      'mut.mjs',
      `export default { isEqual: () => false, resolve: (i) => { i.realMasterState.n = 99; return i.newDocumentState; } };`,
    );
    const s = await loadConflictHandler(file, 'id');
    const i = input();
    await s.resolve(i);
    expect(i.realMasterState).toEqual(d({ n: 2 }));
  });
});

import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  createConflictRegistry,
  lastWriteWins,
  masterWins,
  timestampOf,
  winnerOf,
} from '../../src/replication/conflict.js';
import {
  checkBatch,
  checkCheckpoint,
  checkDoc,
  checkWriteRows,
  compareCheckpoints,
  mergeCheckpoints,
} from '../../src/replication/validate.js';
import { docEquals } from '../../src/core/doc.js';
import { BatchSizer } from '../../src/replication/sizing.js';
import type { DocState } from '../../src/core/types.js';

const rules = { primaryKey: 'id', maxDepth: 10, maxKeyLength: 20 };
const parse = (s: string): unknown => JSON.parse(s);

describe('document validation', () => {
  it('accepts doc states and normalises them', () => {
    const d = checkDoc(parse('{"id":"a","x":[1,{"y":null}],"_meta":{"lwt":1},"_rev":"1-x"}'), rules);
    expect(d).toEqual({ id: 'a', x: [1, { y: null }], _deleted: false });
    expect(checkDoc(parse('{"id":"a","_deleted":true}'), rules)).toEqual({ id: 'a', _deleted: true });
    // "constructor" and "prototype" are ordinary data: nothing merges documents key by key
    expect(typeof checkDoc(parse('{"id":"c","constructor":{"prototype":{"polluted":1}}}'), rules)).toBe('object');
  });

  it('refuses everything else', () => {
    const bad = [
      'null',
      '[]',
      '"x"',
      '5',
      '{}',
      '{"id":""}',
      '{"id":5}',
      '{"id":null}',
      '{"id":"' + 'k'.repeat(21) + '"}',
      '{"id":"__proto__"}',
      '{"id":"a","_deleted":"yes"}',
      '{"id":"a","_deleted":1}',
      '{"id":"a","__proto__":{"polluted":1}}',
      '{"id":"a","x":{"y":[{"__proto__":{"polluted":1}}]}}',
      '{"id":"a","x":{"\\u005f_proto__":1}}',
      '{"id":"a","x":' + '['.repeat(12) + ']'.repeat(12) + '}',
    ];
    for (const text of bad) expect(typeof checkDoc(parse(text), rules), text).toBe('string');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('checks masterWrite rows as a whole', () => {
    expect(
      checkWriteRows(
        [[{ newDocumentState: { id: 'a' } }, { newDocumentState: { id: 'b' }, assumedMasterState: null }]],
        rules,
      ),
    ).toEqual([{ newDocumentState: { id: 'a', _deleted: false } }, { newDocumentState: { id: 'b', _deleted: false } }]);
    expect(typeof checkWriteRows([null], rules)).toBe('string');
    expect(typeof checkWriteRows([[null]], rules)).toBe('string');
    expect(typeof checkWriteRows([[{}]], rules)).toBe('string');
    expect(typeof checkWriteRows([[{ newDocumentState: { id: 'a' } }, { newDocumentState: { x: 1 } }]], rules)).toBe(
      'string',
    );
    expect(typeof checkWriteRows([[{ newDocumentState: { id: 'a' }, assumedMasterState: { id: 'b' } }]], rules)).toBe(
      'string',
    );
    expect(typeof checkWriteRows([[{ newDocumentState: { id: 'a' }, assumedMasterState: 7 }]], rules)).toBe('string');
  });

  it('leaves invalid documents out of a batch and refuses bad shapes', () => {
    const b = checkBatch(parse('{"checkpoint":{"id":"x","lwt":1},"documents":[{"id":"a"},{"nope":1},null]}'), rules);
    expect(b).toMatchObject({ checkpoint: { id: 'x', lwt: 1 }, documents: [{ id: 'a', _deleted: false }] });
    expect(typeof b !== 'string' && b.rejected.length).toBe(2);
    expect(typeof checkBatch(parse('{"checkpoint":"abc","documents":[]}'), rules)).toBe('string');
    expect(typeof checkBatch(parse('{"checkpoint":{"__proto__":{"x":1}},"documents":[]}'), rules)).toBe('string');
    expect(typeof checkBatch(parse('{"checkpoint":null,"documents":{}}'), rules)).toBe('string');
    expect(typeof checkBatch(null, rules)).toBe('string');
  });
});

describe('checkpoints', () => {
  it('merges like RxDB and compares (lwt, id)', () => {
    expect(mergeCheckpoints(null, { id: 'a', lwt: 1 })).toEqual({ id: 'a', lwt: 1 });
    expect(mergeCheckpoints({ id: 'a', lwt: 1, extra: true }, { id: 'b', lwt: 2 })).toEqual({
      id: 'b',
      lwt: 2,
      extra: true,
    });
    expect(mergeCheckpoints({ id: 'a', lwt: 1 }, null)).toEqual({ id: 'a', lwt: 1 });
    expect(compareCheckpoints({ id: 'a', lwt: 1 }, { id: 'b', lwt: 1 })).toBeLessThan(0);
    expect(compareCheckpoints({ id: 'a', lwt: 2 }, { id: 'b', lwt: 1 })).toBeGreaterThan(0);
    expect(compareCheckpoints({ id: 'a', lwt: 1 }, null)).toBeUndefined();
    expect(checkCheckpoint({ big: 'x'.repeat(9000) })).toBeUndefined();
    expect(checkCheckpoint([1])).toBeUndefined();
  });
});

describe('conflict strategies', () => {
  const d = (fields: Record<string, unknown>): DocState => ({ id: 'x', ...fields, _deleted: false }) as DocState;

  it('master wins under "master"', () => {
    const s = masterWins();
    const real = d({ v: 'm' });
    expect(s.resolve({ newDocumentState: d({ v: 'f' }), assumedMasterState: undefined, realMasterState: real })).toBe(
      real,
    );
  });

  it('the newer timestamp wins under "lww", numbers and ISO strings alike, missing is oldest', () => {
    const s = lastWriteWins();
    const at = (t: unknown, v: string): DocState => d({ updatedAt: t, v });
    const pick = (a: DocState, b: DocState): DocState =>
      s.resolve({ newDocumentState: a, assumedMasterState: undefined, realMasterState: b });
    expect(pick(at(2, 'mine'), at(1, 'theirs')).v).toBe('mine');
    expect(pick(at(1, 'mine'), at(2, 'theirs')).v).toBe('theirs');
    expect(pick(at('2024-05-01T00:00:00.000Z', 'mine'), at('2024-04-30T23:59:59.999Z', 'theirs')).v).toBe('mine');
    expect(pick(at(Date.parse('2024-05-02'), 'mine'), at('2024-05-01T00:00:00Z', 'theirs')).v).toBe('mine');
    expect(pick(d({ v: 'mine' }), at(0, 'theirs')).v).toBe('theirs');
    expect(pick(at('not a date', 'mine'), at(-5, 'theirs')).v).toBe('theirs');
    expect(timestampOf(undefined)).toBe(-Infinity);
    const custom = lastWriteWins('ts');
    expect(
      custom.resolve({
        newDocumentState: d({ ts: 5, v: 'a' }),
        assumedMasterState: undefined,
        realMasterState: d({ ts: 4, v: 'b' }),
      }).v,
    ).toBe('a');
  });

  it('breaks lww ties the same way whichever side resolves', () => {
    const s = lastWriteWins();
    const a = d({ updatedAt: 7, v: 'a' });
    const b = d({ updatedAt: 7, v: 'b' });
    const ab = s.resolve({ newDocumentState: a, assumedMasterState: undefined, realMasterState: b });
    const ba = s.resolve({ newDocumentState: b, assumedMasterState: undefined, realMasterState: a });
    expect(ab).toBe(ba);
    expect(ab.v).toBe('b');
  });

  it('has a registry that more strategies can join', () => {
    const r = createConflictRegistry();
    expect(r.names()).toEqual(['master', 'lww']);
    expect(r.create('lww', { lwwField: 'ts' }).name).toBe('lww');
    expect(() => r.create('nope')).toThrow(/unknown conflict strategy "nope" \(known: master, lww\)/);
    r.register('fork', () => ({ name: 'fork', isEqual: docEquals, resolve: (i) => i.newDocumentState }));
    expect(r.create('fork').name).toBe('fork');
  });

  it('serialises canonically and names winners', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 1, c: undefined }], _deleted: false })).toBe(
      '{"_deleted":false,"a":[{"d":1}],"b":1}',
    );
    const l = d({ v: 1 });
    const r = d({ v: 2 });
    expect(winnerOf(r, l, r, docEquals)).toBe('remote');
    expect(winnerOf({ ...l }, l, r, docEquals)).toBe('local');
    expect(winnerOf(d({ v: 3 }), l, r, docEquals)).toBe('merged');
  });
});

describe('batch sizing', () => {
  it('starts small, then sizes batches to fit one frame, within the configured maximum', () => {
    const s = new BatchSizer(1000, 87_381);
    expect(s.size).toBe(100);
    s.observe(100 * 218 + 200, 100);
    expect(s.size).toBe(Math.floor((87_381 * 0.85) / 218));
    const small = new BatchSizer(1000, 87_381);
    small.observe(100 * 30, 100);
    expect(small.size).toBe(1000);
    const huge = new BatchSizer(1000, 87_381);
    huge.observe(2_000_000, 1);
    expect(huge.size).toBe(1);
    huge.observe(0, 0); // nothing learned from an empty page
    expect(huge.size).toBe(1);
  });
});

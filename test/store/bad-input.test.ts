import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { P2PSyncError } from '../../src/core/errors.js';
import { formatFromPath, openStore, type FileStoreOptions } from '../../src/store/open.js';
import { StoreFixture } from './harness.js';

interface BadCase {
  name: string;
  file: string;
  content: string;
  options?: Partial<FileStoreOptions>;
  code: string;
  details: Record<string, unknown>;
  message: RegExp;
}

const cases: BadCase[] = [
  {
    name: 'unparsable JSON (trailing comma)',
    file: 'a.json',
    content: '[\n  {"id": "a"},\n  {"id": "b",}\n]\n',
    code: 'E_PARSE',
    details: { line: 3, column: 14 },
    message: /a\.json:3:14: invalid JSON/,
  },
  {
    name: 'truncated JSON',
    file: 'a.json',
    content: '[{"id":"a"},\n{"id":"b"}',
    code: 'E_PARSE',
    details: { line: 2, column: 11 },
    message: /a\.json:2:11: invalid JSON: unexpected end/,
  },
  {
    name: 'a JSON document that is not an object',
    file: 'a.json',
    content: '[\n  {"id": "a"},\n  "b"\n]',
    code: 'E_NOT_OBJECT',
    details: { line: 3, column: 3, index: 1 },
    message: /a\.json:3:3: a document must be a JSON object, got a string/,
  },
  {
    name: 'a JSON document without the key',
    file: 'a.json',
    content: '[{"id": "a"},\n {"name": "x"}]',
    code: 'E_BAD_KEY',
    details: { line: 2, column: 2, key: 'id' },
    message: /a\.json:2:2: the primary key "id" must be a non-empty string; it is missing/,
  },
  {
    name: 'a non-string key',
    file: 'a.json',
    content: '[{"id": 5}]',
    code: 'E_BAD_KEY',
    details: { line: 1, column: 2, key: 'id' },
    message: /got a number/,
  },
  {
    name: 'an empty key',
    file: 'a.ndjson',
    content: '{"id":"a"}\n{"id":""}\n',
    code: 'E_BAD_KEY',
    details: { line: 2, key: 'id' },
    message: /a\.ndjson:2:1: .*got an empty string/,
  },
  {
    name: 'a custom key that is missing',
    file: 'a.json',
    content: '[{"id": "a"}]',
    options: { primaryKey: 'slug' },
    code: 'E_BAD_KEY',
    details: { key: 'slug' },
    message: /"slug"/,
  },
  {
    name: 'a duplicate key in JSON',
    file: 'a.json',
    content: '[\n  {"id": "a"},\n  {"id": "b"},\n  {"id": "a", "v": 2}\n]',
    code: 'E_DUPLICATE_KEY',
    details: { line: 4, column: 3, key: 'a', firstLine: 2 },
    message: /a\.json:4:3: duplicate id "a" \(first at line 2\)/,
  },
  {
    name: 'a top-level object without --collection',
    file: 'a.json',
    content: '{"posts": [], "users": [], "n": 1}',
    code: 'E_BAD_COLLECTION',
    details: {},
    message: /pass --collection .*posts, users/,
  },
  {
    name: 'a collection that is not an array',
    file: 'a.json',
    content: '{"posts": {"id": "a"}}',
    options: { collection: 'posts' },
    code: 'E_BAD_COLLECTION',
    details: { collection: 'posts' },
    message: /"posts" is not an array/,
  },
  {
    name: '--collection on a top-level array',
    file: 'a.json',
    content: '[]',
    options: { collection: 'posts' },
    code: 'E_BAD_COLLECTION',
    details: {},
    message: /needs a top-level JSON object/,
  },
  {
    name: 'a bad document inside a collection',
    file: 'a.json',
    content: '{\n  "meta": {"v": 1},\n  "posts": [\n    {"id": "a"},\n    {"title": "no id"}\n  ]\n}',
    options: { collection: 'posts' },
    code: 'E_BAD_KEY',
    details: { line: 5, column: 5 },
    message: /a\.json:5:5:/,
  },
  {
    name: 'a bad NDJSON line',
    file: 'a.ndjson',
    content: '{"id":"a"}\n\n{"id":"b"\n{"id":"c"}\n',
    code: 'E_PARSE',
    details: { line: 3, column: 10 },
    message: /a\.ndjson:3:10: invalid JSON/,
  },
  {
    name: 'an NDJSON line that is not an object',
    file: 'a.jsonl',
    content: '{"id":"a"}\n[1,2]\n',
    code: 'E_NOT_OBJECT',
    details: { line: 2 },
    message: /a\.jsonl:2:1: .*got an array/,
  },
  {
    name: 'a duplicate key in NDJSON',
    file: 'a.ndjson',
    content: '{"id":"a"}\n\n{"id":"b"}\n{"id":"a"}\n',
    code: 'E_DUPLICATE_KEY',
    details: { line: 4, key: 'a', firstLine: 1 },
    message: /a\.ndjson:4:1: duplicate id "a" \(first at line 1\)/,
  },
];

describe('bad input in the user file', () => {
  let fx: StoreFixture;
  beforeEach(async () => {
    fx = await StoreFixture.create();
  });
  afterEach(async () => {
    await fx.cleanup();
  });

  for (const c of cases) {
    it(`rejects ${c.name} with ${c.code}, naming the file and position, and leaves the file untouched`, async () => {
      const path = fx.file(c.file);
      await writeFile(path, c.content);
      const err = await openStore({ path, watch: false, ...c.options }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(P2PSyncError);
      const e = err as P2PSyncError;
      expect(e.code).toBe(c.code);
      expect(e.message).toMatch(c.message);
      expect(e.details).toMatchObject({ file: path, ...c.details });
      expect(await readFile(path, 'utf8')).toBe(c.content);
      expect(existsSync(path + '.p2psync')).toBe(false);
      // Nothing stays locked: once repaired, the file opens.
      await writeFile(path, c.file.endsWith('.json') ? (c.options?.collection ? '{"posts": []}' : '[]') : '');
      const s = await fx.open({ path, watch: false, ...c.options });
      expect(await s.all()).toEqual([]);
    });
  }

  it('rejects unknown extensions and formats with E_BAD_FORMAT, and --collection on NDJSON with E_BAD_OPTION', async () => {
    expect(() => formatFromPath('notes.txt')).toThrow(expect.objectContaining({ code: 'E_BAD_FORMAT' }));
    expect(formatFromPath('A.JSONL')).toBe('ndjson');
    await expect(openStore({ path: fx.file('notes.txt') })).rejects.toMatchObject({ code: 'E_BAD_FORMAT' });
    await expect(openStore({ path: fx.file('n.json'), format: 'yaml' as 'json' })).rejects.toMatchObject({
      code: 'E_BAD_FORMAT',
    });
    await expect(openStore({ path: fx.file('n.ndjson'), collection: 'x' })).rejects.toMatchObject({
      code: 'E_BAD_OPTION',
    });
    expect(existsSync(fx.file('notes.txt'))).toBe(false);
    // --format overrides the extension.
    const s = await fx.open({ path: fx.file('notes.txt'), format: 'ndjson', watch: false });
    await s.bulkWrite([{ document: { id: 'a', _deleted: false }, expected: null }], { kind: 'local' });
    await s.flush();
    expect(await readFile(fx.file('notes.txt'), 'utf8')).toBe('{"id":"a"}\n');
  });

  it('rejects a damaged sidecar with E_SIDECAR, but ignores a torn last line', async () => {
    const path = fx.file('a.ndjson');
    let s = await fx.open({ path, watch: false });
    await s.bulkWrite([{ document: { id: 'a', _deleted: false }, expected: null }], { kind: 'local' });
    await s.close();
    // A crash mid-append leaves a partial last line: ignored.
    await appendFile(path + '.p2psync', '{"t":"b","d":[[1,{"id":"zz"');
    s = await fx.open({ path, watch: false });
    expect((await s.all()).map((d) => d.id)).toEqual(['a']);
    await s.bulkWrite([{ document: { id: 'b', _deleted: false }, expected: null }], { kind: 'local' });
    await s.close();
    s = await fx.open({ path, watch: false });
    expect((await s.all()).map((d) => d.id)).toEqual(['a', 'b']);
    await s.close();
    // Damage in the middle is not a crash artefact.
    const lines = (await readFile(path + '.p2psync', 'utf8')).split('\n');
    lines.splice(1, 0, 'garbage');
    await writeFile(path + '.p2psync', lines.join('\n'));
    await expect(openStore({ path, watch: false })).rejects.toMatchObject({ code: 'E_SIDECAR' });
    // A sidecar made for another key does not silently mix ids.
    await writeFile(path + '.p2psync', lines.filter((l) => l !== 'garbage').join('\n'));
    await writeFile(path, '');
    await expect(openStore({ path, watch: false, primaryKey: 'slug' })).rejects.toMatchObject({
      code: 'E_SIDECAR',
      message: /--key id/,
    });
  });
});

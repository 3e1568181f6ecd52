import { createHash } from 'node:crypto';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { jsonArrayElements, NotAnArray } from '../../src/store/json-elements.js';

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

/** The elements the scanner finds in `content`, each parsed, or the error it threw. */
async function elements(content: string | Buffer): Promise<unknown[] | Error> {
  const dir = await mkdtemp(join(tmpdir(), 'p2psync-elements-'));
  dirs.push(dir);
  const path = join(dir, 'f.json');
  await writeFile(path, content);
  const handle = await open(path, 'r');
  const out: unknown[] = [];
  try {
    for await (const bytes of jsonArrayElements(handle, path, createHash('sha1')))
      out.push(JSON.parse(bytes.toString('utf8')));
    return out;
  } catch (err) {
    return err as Error;
  } finally {
    await handle.close();
  }
}

describe('jsonArrayElements', () => {
  it('finds the elements JSON.parse finds, whatever the strings and nesting hold', async () => {
    const docs = [
      { id: 'a', s: 'comma, bracket ] brace } quote " backslash \\ and \\" escaped', n: [1, [2, { x: ']' }]] },
      { id: 'b', nested: { deep: [[[{}]]], empty: [] }, u: 'é€😀\u2028' },
      { id: 'c\\', t: '\\\\"' },
      [],
      'a string',
      42,
      null,
    ];
    for (const text of [JSON.stringify(docs), JSON.stringify(docs, null, 2) + '\n', '\ufeff' + JSON.stringify(docs)])
      expect(await elements(text)).toEqual(docs);
    expect(await elements('[]')).toEqual([]);
    expect(await elements(' [ \n ] \n')).toEqual([]);
  });

  it('follows elements across 4 MiB reads', async () => {
    const docs = Array.from({ length: 3 }, (_, i) => ({ id: `d${i}`, body: 'é"\\,]}'.repeat(400_000 + i) }));
    expect(await elements(JSON.stringify(docs))).toEqual(docs);
  });

  it('refuses what is not exactly one array, leaving it to the whole-text parse', async () => {
    for (const bad of ['', '{"a":[1]}', '[1,]', '[,1]', '[1,,2]', '[1] x', '[1', '["open', '[1]]', 'x[1]'])
      expect(await elements(bad), bad).toBeInstanceOf(NotAnArray);
  });
});

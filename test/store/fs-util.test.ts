import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { appendFile, open, readFile, writeFile } from 'node:fs/promises';
import { ByteBuffer } from '../../src/store/bytes.js';
import { contentHash, readVersioned, writeFileAtomicWith } from '../../src/store/fs-util.js';
import { StoreFixture } from './harness.js';

let fx: StoreFixture;
beforeEach(async () => {
  fx = await StoreFixture.create();
});
afterEach(async () => {
  await fx.cleanup();
});

describe('readVersioned', () => {
  it('reads text and version; undefined for a missing file', async () => {
    const path = fx.file('a.ndjson');
    expect(await readVersioned(path)).toBeUndefined();
    await writeFile(path, '{"id":"é"}\n');
    const r = (await readVersioned(path))!;
    expect(r.text).toBe('{"id":"é"}\n');
    expect(r.version).toMatchObject({ size: Buffer.byteLength(r.text), hash: contentHash(r.text) });
    expect(r.appended).toBeUndefined();
  });

  it('returns the appended text when the file is a known version plus more after a line break', async () => {
    const path = fx.file('a.ndjson');
    await writeFile(path, '{"id":"a"}\n');
    const first = (await readVersioned(path))!;
    await appendFile(path, '{"id":"b"}\n{"id":"c"}\n');
    const r = (await readVersioned(path, first.version))!;
    expect(r.appended).toBe('{"id":"b"}\n{"id":"c"}\n');
    // The version's hash is the whole file's, as without `since`.
    expect(r.version.hash).toBe(contentHash('{"id":"a"}\n{"id":"b"}\n{"id":"c"}\n'));
    expect(r.text).toBe('{"id":"a"}\n{"id":"b"}\n{"id":"c"}\n');
  });

  it('counts everything in a file that was empty as appended', async () => {
    const path = fx.file('a.ndjson');
    await writeFile(path, '');
    const empty = (await readVersioned(path))!;
    await appendFile(path, '{"id":"a"}\n');
    expect((await readVersioned(path, empty.version))!.appended).toBe('{"id":"a"}\n');
  });

  it('returns no appended text when the known part changed, did not end a line, or the file did not grow', async () => {
    const path = fx.file('a.ndjson');
    await writeFile(path, '{"id":"a"}\n');
    const known = (await readVersioned(path))!.version;
    await writeFile(path, '{"id":"A"}\n{"id":"b"}\n');
    expect((await readVersioned(path, known))!.appended).toBeUndefined();
    await writeFile(path, '{"id":"a"}');
    const noBreak = (await readVersioned(path))!.version;
    await appendFile(path, '{"id":"b"}\n');
    expect((await readVersioned(path, noBreak))!.appended).toBeUndefined();
    await writeFile(path, '{"id":"b"}\n');
    expect((await readVersioned(path, known))!.appended).toBeUndefined();
  });
});

describe('writeFileAtomicWith', () => {
  it('continues a copied start (inside the kernel where it can) and cuts what the source had past it', async () => {
    const path = fx.file('a.json');
    const old = '[\n  {"id":"a"},\n  {"id":"b"}\n]\n';
    // More after the copied start than the new file writes there: it must not survive.
    await writeFile(path, old + ' '.repeat(64));
    const end = old.lastIndexOf('}') + 1;
    const resume = { hash: createHash('sha1').update(old.slice(0, end)), upTo: end };
    const source = await open(path, 'r');
    const { version, handle } = await writeFileAtomicWith(
      path,
      new ByteBuffer(),
      async (w) => {
        await w.copyFrom(source, 0, end);
        w.text(',\n  {"id":"c"}\n]\n');
      },
      false,
      resume,
    );
    await source.close();
    expect(handle).toBeUndefined();
    const text = '[\n  {"id":"a"},\n  {"id":"b"},\n  {"id":"c"}\n]\n';
    expect(await readFile(path, 'utf8')).toBe(text);
    expect(version.hash).toBe(contentHash(text));
    expect(version.size).toBe(Buffer.byteLength(text));
  });

  it('copies through its buffer, hashing it, when the hash has to see the copied bytes', async () => {
    const path = fx.file('a.ndjson');
    await writeFile(path, '{"id":"a"}\n{"id":"b"}\n');
    const source = await open(path, 'r');
    const { version } = await writeFileAtomicWith(path, new ByteBuffer(), async (w) => {
      await w.copyFrom(source, 0, 11);
      w.text('{"id":"c"}\n');
    });
    await source.close();
    expect(await readFile(path, 'utf8')).toBe('{"id":"a"}\n{"id":"c"}\n');
    expect(version.hash).toBe(contentHash('{"id":"a"}\n{"id":"c"}\n'));
  });
});

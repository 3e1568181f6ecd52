import { createHash } from 'node:crypto';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fileLines, handleLines, type FileLine } from '../../src/store/line-reader.js';

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function tempFile(content: Buffer | string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'p2psync-lines-'));
  dirs.push(dir);
  const path = join(dir, 'f');
  await writeFile(path, content);
  return path;
}

async function collect(lines: AsyncIterable<FileLine>): Promise<FileLine[]> {
  const out: FileLine[] = [];
  for await (const l of lines) out.push(l);
  return out;
}

describe('fileLines', () => {
  it('gives what text.split("\\n") gives, across 4 MiB reads, with multi-byte characters cut by a read', async () => {
    // A line longer than one read, lines whose two- and three-byte characters straddle read boundaries, no final newline.
    const text = ['a' + 'é'.repeat(3_000_000), 'short', '', '€x'.repeat(1_500_001), 'tail without newline'].join('\n');
    const path = await tempFile(text);
    const lines = await collect((await fileLines(path, 'read'))!);
    expect(lines.map((l) => l.text)).toEqual(text.split('\n'));
    expect(lines.map((l) => l.last)).toEqual([false, false, false, false, true]);
    expect(lines.map((l) => l.line)).toEqual([1, 2, 3, 4, 5]);
    expect(lines.at(-1)!.bytes).toBe(Buffer.byteLength(text));
    expect(lines[0]!.bytes).toBe(Buffer.byteLength(text.split('\n')[0]!) + 1);
  });

  it('ends with an empty last piece after a final newline, and is undefined for a missing file', async () => {
    const lines = await collect((await fileLines(await tempFile('a\nb\n'), 'read'))!);
    expect(lines.map((l) => [l.text, l.last])).toEqual([
      ['a', false],
      ['b', false],
      ['', true],
    ]);
    expect(await fileLines(join(tmpdir(), 'p2psync-no-such-file-x'), 'read')).toBeUndefined();
  });

  it('hashes every byte and flags lines that are not UTF-8 when asked', async () => {
    const bytes = Buffer.concat([Buffer.from('ok\n'), Buffer.from([0x66, 0xff, 0x0a]), Buffer.from('fine')]);
    const path = await tempFile(bytes);
    const handle = await open(path, 'r');
    try {
      const hash = createHash('sha1');
      const lines = await collect(handleLines(handle, path, 'read', { hash, checkUtf8: true }));
      expect(lines.map((l) => l.utf8)).toEqual([true, false, true]);
      expect(hash.digest('hex')).toBe(createHash('sha1').update(bytes).digest('hex'));
    } finally {
      await handle.close();
    }
  });
});

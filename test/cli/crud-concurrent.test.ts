import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/spawn.js';
import { WriterProcess } from '../store/child.js';

describe('p2psync put / rm while another process owns the store', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'p2psync-crud-'));
  });
  afterEach(async () => {
    await WriterProcess.killAll();
    await rm(dir, { recursive: true, force: true });
  });

  it('loses no update in either direction', async () => {
    const store = join(dir, 'live.ndjson');
    await writeFile(store, '{"id":"seed-0"}\n{"id":"seed-1"}\n');
    // The owner writes o-0..o-399 (one every ~2 ms) with watching on, like `p2psync join`.
    const owner = new WriterProcess(['owner', store, '400']);
    await owner.waitForLine((l) => l === 'ready');
    const env = { P2PSYNC_STORE: store };
    const results = await Promise.all([
      runCli(['put', '{"id":"cli-0"}', '{"id":"cli-1"}'], { env }),
      runCli(['put'], { env, input: '{"id":"cli-2"}\n{"id":"cli-3"}\n' }),
      runCli(['rm', 'seed-0'], { env }),
      runCli(['put', '{"id":"seed-1","edited":true}'], { env }),
    ]);
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    await owner.waitForLine((l) => l === 'wrote');
    const ls = await runCli(['ls', '--json'], { env });
    owner.child.stdin!.end();
    await owner.waitForLine((l) => l === 'closed');

    const expected = [
      ...Array.from({ length: 400 }, (_, i) => `o-${i}`),
      'cli-0',
      'cli-1',
      'cli-2',
      'cli-3',
      'seed-1',
    ].sort();
    const inFile = (await readFile(store, 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { id: string; edited?: boolean });
    expect(inFile.map((d) => d.id).sort()).toEqual(expected);
    expect(inFile.find((d) => d.id === 'seed-1')).toEqual({ id: 'seed-1', edited: true });
    // ls ran after the owner's last write was flushed, while it still owned the store.
    const listed = ls.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { document: { id: string } }).document.id);
    expect(listed.sort()).toEqual(expected);
  });
});

/**
 * Interop: an encrypted p2psync store replicates with a stock RxDB 17 peer unchanged (documents travel in plaintext
 * over the data channel), while the p2psync file holds the encrypted field only as ciphertext.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { filesContaining } from '../crypt/harness.js';
import { crud } from '../helpers/e2e.js';
import {
  interopFixture,
  ROLE_FORK_TOKEN,
  ROLE_MASTER_TOKEN,
  startRxdbAndJoin,
  waitRxdbMatches,
} from '../helpers/rxdb-join.js';

const { tmp, peers, url, topic } = interopFixture('join-rxdb-encrypted');

async function lsDocs(store: string, keyFile: string): Promise<Array<Record<string, unknown>>> {
  const r = await crud(['ls', '--store', store, '--key-file', keyFile]);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('an encrypted p2psync store and stock RxDB 17', () => {
  it('replicate both ways in plaintext; the p2psync file never holds the encrypted field in plaintext', async () => {
    const dir = await tmp.make('join-rxdb-encrypted-');
    const file = join(dir, 'docs.ndjson');
    const key = join(dir, 'k');
    await writeFile(key, 'interop key\n');
    await crud([
      'put',
      '--store',
      file,
      '--encrypt-fields',
      'title',
      '--key-file',
      key,
      '{"id":"P-1","title":"secret title from p2psync","n":1}',
    ]);
    const t = topic();
    const { rx, p2p } = await startRxdbAndJoin(
      { signal: url('rxdb'), topic: t, token: ROLE_MASTER_TOKEN, prefix: 'R', seed: 10, changes: true },
      { store: file, topic: t, signal: url('rxdb'), token: ROLE_FORK_TOKEN, extra: ['--key-file', key] },
      (p) => peers.push(p),
    );
    await p2p.waitFor('peer-connected', 20_000);
    await waitRxdbMatches(rx, () => lsDocs(file, key), { count: 11, timeoutMs: 30_000 });
    expect((await rx.get('P-1'))?.title).toBe('secret title from p2psync');

    await rx.put({ id: 'R-live', title: 'secret title from RxDB', n: 2 });
    await waitRxdbMatches(rx, () => lsDocs(file, key), { count: 12, timeoutMs: 30_000 });
    await p2p.stop();
    for (const s of ['secret title from p2psync', 'secret title from RxDB', 'Document number 3'])
      expect(await filesContaining(dir, s), s).toEqual([]);
    expect(p2p.events.filter((e) => e.event === 'error')).toEqual([]);
  });
});

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { filesContaining } from '../crypt/harness.js';
import { crud, e2eFixture, FORK_TOKEN, MASTER_TOKEN, startPeer, waitUntil } from '../helpers/e2e.js';

const { temp, signals } = e2eFixture();

/** The store's documents in plaintext, through `p2psync ls` with the key. */
async function lsDocs(store: string, keyFile: string): Promise<Map<string, Record<string, unknown>>> {
  const r = await crud(['ls', '--store', store, '--key-file', keyFile]);
  const docs = r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return new Map(docs.map((d) => [d.id as string, d]));
}

describe('two peers with encrypted stores and different keys', () => {
  it('replicate in plaintext over the data channel while neither file holds the secrets in plaintext', async () => {
    const dir = await temp.make();
    const fileA = join(dir, 'a.json');
    const fileB = join(dir, 'b.ndjson');
    const keyA = join(dir, 'a.key');
    const keyB = join(dir, 'b.key');
    await writeFile(keyA, 'key of peer A\n');
    await writeFile(keyB, 'a different key, of peer B\n');
    // A encrypts "secret"; B encrypts "secret" and "pin": each peer decides for its own disk.
    await crud([
      'put',
      '--store',
      fileA,
      '--encrypt-fields',
      'secret',
      '--key-file',
      keyA,
      '{"id":"a1","title":"from A","secret":"SECRET-A1"}',
    ]);
    await crud([
      'put',
      '--store',
      fileB,
      '--encrypt-fields',
      'secret,pin',
      '--key-file',
      keyB,
      '{"id":"b1","title":"from B","secret":"SECRET-B1","pin":"PIN-B1"}',
    ]);

    const sig = await signals.start();
    const [a, b] = await Promise.all([
      startPeer({ store: fileA, signal: sig.url, token: MASTER_TOKEN, extra: ['--key-file', keyA] }),
      startPeer({
        store: fileB,
        signal: sig.url,
        token: FORK_TOKEN,
        env: { P2PSYNC_ENCRYPTION_KEY: 'a different key, of peer B' },
      }),
    ]);
    await Promise.all([a.waitFor('peer-connected', 20_000), b.waitFor('peer-connected', 20_000)]);

    // Live: a put into B while B's join owns its file (the CRUD command encrypts under the write lock).
    await crud(['put', '--store', fileB, '--key-file', keyB, '{"id":"b2","secret":"SECRET-B2","pin":"PIN-B2"}']);
    const expected = new Map<string, Record<string, unknown>>([
      ['a1', { id: 'a1', title: 'from A', secret: 'SECRET-A1' }],
      ['b1', { id: 'b1', title: 'from B', secret: 'SECRET-B1', pin: 'PIN-B1' }],
      ['b2', { id: 'b2', secret: 'SECRET-B2', pin: 'PIN-B2' }],
    ]);
    let last: unknown[] = [];
    await waitUntil(
      async () => {
        last = [await lsDocs(fileA, keyA), await lsDocs(fileB, keyB)];
        return last.every(
          (m) => JSON.stringify([...(m as Map<string, unknown>)].sort()) === JSON.stringify([...expected].sort()),
        );
      },
      40_000,
      () => JSON.stringify(last.map((m) => [...(m as Map<string, unknown>)])),
    );
    await Promise.all([a.stop(), b.stop()]);
    expect(a.events.filter((e) => e.event === 'error')).toEqual([]);
    expect(b.events.filter((e) => e.event === 'error')).toEqual([]);

    // No file of either peer (stores, sidecars, keyrings) holds a secret in plaintext.
    for (const s of ['SECRET-A1', 'SECRET-B1', 'SECRET-B2']) expect(await filesContaining(dir, s), s).toEqual([]);
    // "pin" is B's choice: B's files hide it, A (which does not encrypt it) keeps it readable.
    expect((await filesContaining(dir, 'PIN-B2')).sort()).toEqual(['a.json', 'a.json.p2psync']);
    const onA = JSON.parse(await readFile(fileA, 'utf8')) as Array<Record<string, unknown>>;
    expect(onA.find((d) => d.id === 'b2')).toEqual({
      id: 'b2',
      secret: expect.stringMatching(/^p2psync:v1:/),
      pin: 'PIN-B2',
    });
    // Each file opens with its own key only.
    const wrong = await crud(['ls', '--store', fileA, '--key-file', keyB]).catch((e: Error) => e.message);
    expect(wrong).toMatch(/exited 2: .*E_WRONG_KEY/);
  });
});

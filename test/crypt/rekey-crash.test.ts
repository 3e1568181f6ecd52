import { spawn } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { P2PSyncError } from '../../src/core/errors.js';
import type { DocState } from '../../src/core/types.js';
import { BIN } from '../helpers/spawn.js';
import { doc, insert } from '../store/contract.js';
import { tempDir } from '../store/harness.js';
import { filesContaining, openEncrypted } from './harness.js';

const CYCLES = 8;
const DOCS = 2000;

/** Runs `p2psync rekey` in its own process group; SIGKILLs the group after `killAfterMs` if given. */
async function runRekey(
  path: string,
  from: string,
  to: string,
  killAfterMs?: number,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const child = spawn(process.execPath, [BIN, 'rekey', '--store', path, '--key-file', from, '--new-key-file', to], {
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { PATH: process.env.PATH },
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  if (killAfterMs !== undefined) {
    await Promise.race([delay(killAfterMs), exited]);
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  return { ...(await exited), stderr };
}

describe('rekey crash safety: SIGKILL at random moments, then open with either key', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it(`always opens with the old key or the new one, with every document intact (${CYCLES} kills)`, async () => {
    const path = join(dir, 'vault.ndjson');
    const keys = [join(dir, 'one.key'), join(dir, 'two.key')] as const;
    await writeFile(keys[0], 'key number one');
    await writeFile(keys[1], 'key number two');
    const s = await openEncrypted({ path, watch: false }, { key: { file: keys[0] }, fields: ['secret'] });
    await insert(
      s,
      Array.from({ length: DOCS }, (_, i) => doc(`d${i}`, { secret: `SECRET-${i}`, n: i })),
    );
    await s.bulkWrite(
      [{ document: doc('d0', { secret: 'SECRET-0', n: 0 }, true), expected: doc('d0', { secret: 'SECRET-0', n: 0 }) }],
      { kind: 'local' },
    );
    const expected = (await s.changesSince(null, DOCS + 1)).documents.sort((a, b) =>
      (a.id as string).localeCompare(b.id as string),
    );
    await s.close();

    /** Which keys open the store; each one that does must show exactly the expected documents. */
    const opening = async (): Promise<boolean[]> => {
      const ok: boolean[] = [];
      for (const key of keys) {
        let docs: DocState[];
        try {
          const store = await openEncrypted({ path, watch: false }, { key: { file: key } });
          docs = (await store.changesSince(null, DOCS + 1)).documents;
          await store.close();
        } catch (err) {
          expect((err as P2PSyncError).code).toBe('E_WRONG_KEY');
          ok.push(false);
          continue;
        }
        expect(docs.sort((a, b) => (a.id as string).localeCompare(b.id as string))).toEqual(expected);
        ok.push(true);
      }
      return ok;
    };

    // One uninterrupted run measures how long a rekey takes here; kills then land anywhere within that time.
    const started = Date.now();
    const full = await runRekey(path, keys[0], keys[1]);
    expect(full.code, full.stderr).toBe(0);
    const duration = Date.now() - started;
    expect(await opening()).toEqual([false, true]);

    let current = 1;
    const seen = new Map<string, number>();
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      // Every other kill after the first third, where the re-encryption itself runs (before it: start-up and scrypt).
      const from = cycle % 2 === 0 ? 0 : duration / 3;
      const r = await runRekey(
        path,
        keys[current]!,
        keys[1 - current]!,
        from + Math.random() * (duration * 1.1 - from),
      );
      const ok = await opening();
      const state =
        ok[current] && ok[1 - current]
          ? 'both keys (rekey interrupted)'
          : ok[current]
            ? 'old key only'
            : ok[1 - current]
              ? 'new key only'
              : 'neither';
      seen.set(state, (seen.get(state) ?? 0) + 1);
      expect(state, `cycle ${cycle}: ${r.stderr}`).not.toBe('neither');
      if (state === 'new key only') current = 1 - current;
    }
    expect(await filesContaining(dir, 'SECRET-')).toEqual([]);
    // A rekey run to the end after all that leaves exactly one key that opens the store.
    expect((await runRekey(path, keys[current]!, keys[1 - current]!)).code).toBe(0);
    expect(await opening()).toEqual(current === 0 ? [false, true] : [true, false]);
    console.log(
      `rekey crash test: one rekey takes ${duration} ms; states after the kills: ${JSON.stringify(Object.fromEntries(seen))}`,
    );
  }, 180_000);
});

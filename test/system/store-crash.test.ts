import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import type { SyncEvent } from '../../src/core/events.js';
import type { DocState } from '../../src/core/types.js';
import { openStore } from '../../src/store/open.js';
import { WriterProcess, writerFixture } from '../store/child.js';

/**
 * Cycles per case (2 formats x 2 barriers; a soak, so it runs in the system suite). Each cycle: start a writer,
 * SIGKILL it at a random moment, reopen and check.
 */
const CYCLES = 20;
/** The most documents one unacknowledged batch can touch (8 steps x (doc, delete) + counter). */
const MAX_UNACKED_CHANGES = 8 * 2 + 1;

function userDocs(text: string, format: 'json' | 'ndjson'): Array<Record<string, unknown>> {
  if (format === 'json') return JSON.parse(text) as Array<Record<string, unknown>>;
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('crash safety: SIGKILL a writer at random moments', () => {
  const w = writerFixture();

  const cases = [
    ['ndjson', 'flush'],
    ['json', 'flush'],
    ['ndjson', 'durable'],
    ['json', 'durable'],
  ] as const;
  for (const [format, barrier] of cases) {
    it(`${format}, acknowledged after ${barrier}(): the file stays valid, the sidecar consistent, and every acknowledged write survives (${CYCLES} kills)`, async () => {
      const path = w.fx.file(`crash.${format}`);
      let lastAck = -1;
      let token: string | undefined;
      let killedAfterAck = 0;
      for (let cycle = 0; cycle < CYCLES; cycle++) {
        const writer = new WriterProcess(['crash', path, String(lastAck + 1), barrier]);
        // Mostly kill while it writes; sometimes while it is still opening (reconciling after the last crash).
        if (cycle % 4 === 3) await delay(Math.random() * 300);
        else {
          await writer.waitForLine((l) => l.startsWith('ack '));
          await delay(Math.random() * 150);
        }
        writer.kill('SIGKILL');
        const exit = await writer.exited;
        expect(exit.signal, writer.stderr).toBe('SIGKILL');
        for (const l of writer.lines) if (l.startsWith('ack ')) lastAck = Math.max(lastAck, Number(l.slice(4)));
        if (writer.lines.some((l) => l.startsWith('ack '))) killedAfterAck++;

        // The user's file is valid on its own (it may lack acknowledged writes only the journal holds yet).
        userDocs(await readFile(path, 'utf8'), format);
        // The store reopens (no E_SIDECAR, stale locks broken) and needs at most the last batch re-ingested; the
        // open writes the journal's newer records into the file.
        const events: SyncEvent[] = [];
        const store = await openStore({ path, watch: false, emit: (e) => events.push(e) });
        const inFile = userDocs(await readFile(path, 'utf8'), format);
        token ??= store.storageToken;
        expect(store.storageToken).toBe(token);
        for (const e of events) {
          if (e.event === 'outside-edit')
            expect(e.created + e.updated + e.deleted).toBeLessThanOrEqual(MAX_UNACKED_CHANGES);
        }
        const all = await store.all();
        expect(
          all.map(({ _deleted, ...rest }) => rest).sort((a, b) => (a.id as string).localeCompare(b.id as string)),
        ).toEqual([...inFile].sort((a, b) => (a.id as string).localeCompare(b.id as string)));
        // Every acknowledged write is there: live, or a tombstone when an acknowledged step deleted it.
        const ids = Array.from({ length: lastAck + 1 }, (_, s) => `d-${s}`);
        const got = await store.get([...ids, 'counter']);
        for (let s = 0; s <= lastAck; s++) {
          const d = got.get(`d-${s}`);
          expect(d, `d-${s} (acknowledged up to ${lastAck})`).toMatchObject({ id: `d-${s}`, n: s });
          const deleter = s + 5;
          if (deleter % 3 === 0 && deleter <= lastAck)
            expect(d!._deleted, `d-${s} was deleted by step ${deleter}`).toBe(true);
          else if (deleter % 3 !== 0) expect(d!._deleted, `d-${s} was never deleted`).toBe(false);
        }
        if (lastAck >= 0) expect((got.get('counter') as DocState).n).toBeGreaterThanOrEqual(lastAck);
        // Peer state saved with acknowledged batches survives too.
        const peer = await store.getPeerState('peer');
        for (let s = 0; s <= lastAck; s++)
          expect(peer?.assumed.get(`d-${s}`), `assumed d-${s}`).toMatchObject({ id: `d-${s}`, n: s });
        if (lastAck >= 0) expect((peer?.up?.lwt ?? -1) >= lastAck).toBe(true);
        await store.close();
      }
      expect(lastAck).toBeGreaterThan(CYCLES);
      expect(killedAfterAck).toBeGreaterThanOrEqual(CYCLES / 2);
    }, 120_000);
  }
});

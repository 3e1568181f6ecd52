/**
 * `p2psync verify` end to end: real processes, real WebRTC on loopback, a real signaling server.
 */
import { join } from 'node:path';
import { readFile, writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { e2eFixture, putDocs, startPeer, waitAfter, waitConverged, writeDocsFile } from '../helpers/e2e.js';
import { runCli, runCliMany, type CliEvent, type CliResult } from '../helpers/spawn.js';
import { startRxdbPeer, stopAllRxdbProcesses } from '../helpers/rxdb.js';

const { temp, signals } = e2eFixture(() => stopAllRxdbProcesses());

const TOPIC = 'verify-topic';

function verify(signal: string, extra: string[] = [], timeoutS = 25): Promise<CliResult> {
  return runCli(
    [
      'verify',
      '--topic',
      TOPIC,
      '--signal',
      signal,
      '--ice-bind',
      '127.0.0.1',
      '--timeout',
      String(timeoutS),
      ...extra,
    ],
    { timeoutMs: (timeoutS + 10) * 1000 },
  );
}

function events(r: CliResult): CliEvent[] {
  return r.stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as CliEvent);
}

const docs = (n: number, extra: Record<string, unknown> = {}): Array<Record<string, unknown>> =>
  Array.from({ length: n }, (_, i) => ({ id: `d-${String(i).padStart(4, '0')}`, n: i, title: `doc ${i}`, ...extra }));

describe('p2psync verify', () => {
  it('equal replicas (JSON and NDJSON, keys in another order): exit 0, and the joins do not replicate with it', async () => {
    const dir = await temp.make();
    const fileA = join(dir, 'a.json');
    const fileB = join(dir, 'b.ndjson');
    await writeDocsFile(fileA, docs(120));
    await writeDocsFile(
      fileB,
      docs(120).map((d) => Object.fromEntries(Object.entries(d).reverse())),
    );
    const sig = await signals.start();
    const [a, b] = await Promise.all([
      startPeer({ store: fileA, signal: sig.url, topic: TOPIC }),
      startPeer({ store: fileB, signal: sig.url, topic: TOPIC }),
    ]);
    await Promise.all([a.waitFor('synced', 20_000), b.waitFor('synced', 20_000)]);
    const before = await readFile(fileA, 'utf8');

    const r = await verify(sig.url, ['--json', '--store', fileA]);
    expect(r.code, r.stderr).toBe(0);
    const ev = events(r);
    expect(ev.filter((e) => e.event === 'verify-peer')).toHaveLength(2);
    const result = ev.find((e) => e.event === 'verified')!;
    expect(result).toMatchObject({ equal: true, complete: true, differing: [], notVerifiable: [] });
    expect((result.replicas as Array<{ documents: number }>).map((x) => x.documents)).toEqual([120, 120, 120]);
    expect(ev.at(-1)).toMatchObject({ event: 'closed', reason: 'equal', exitCode: 0 });

    // Barrier: each join reports an outside edit made after verify ended, so whatever it printed about verify's
    // link came before on its stdout. Verify was never a peer to them (not even a disconnected one) and made no
    // errors; the edits still replicate.
    const verifyPeerId = ev.find((e) => e.event === 'signaling-connected')!.peerId as string;
    const from = [a.events.length, b.events.length];
    await Promise.all([putDocs(fileA, [{ id: 'after-verify-a' }]), putDocs(fileB, [{ id: 'after-verify-b' }])]);
    await Promise.all([waitAfter(a, from[0]!, 'outside-edit'), waitAfter(b, from[1]!, 'outside-edit')]);
    await waitConverged([fileA, fileB], 122);
    for (const p of [a, b]) {
      expect(p.events.filter((e) => e.event === 'peer-connected')).toHaveLength(1);
      expect(p.events.filter((e) => JSON.stringify(e).includes(verifyPeerId))).toEqual([]);
      expect(p.events.filter((e) => e.event === 'error' || e.event === 'warning')).toEqual([]);
    }
    expect(before).toContain('d-0119');
  });

  it('different replicas: exit 1 with exactly the differing ids, limited by --limit', async () => {
    const dir = await temp.make();
    const fileA = join(dir, 'a.ndjson');
    const fileB = join(dir, 'b.json');
    const local = join(dir, 'local.json');
    const base = docs(300);
    await writeDocsFile(fileA, base);
    // B: one changed, one missing, one extra. Both peers --pull-only, so they keep their differences.
    await writeDocsFile(fileB, [
      ...base.filter((d) => d.id !== 'd-0100').map((d) => (d.id === 'd-0042' ? { ...d, n: -1 } : d)),
      { id: 'zz-only-b' },
    ]);
    await writeDocsFile(local, [...base, { id: 'aa-only-local' }]);
    const sig = await signals.start();
    await Promise.all([
      startPeer({ store: fileA, signal: sig.url, topic: TOPIC, extra: ['--pull-only'] }),
      startPeer({ store: fileB, signal: sig.url, topic: TOPIC, extra: ['--pull-only'] }),
    ]);

    const r = await verify(sig.url, ['--json']);
    expect(r.code, r.stderr).toBe(1);
    const result = events(r).find((e) => e.event === 'verified')!;
    expect(result).toMatchObject({ equal: false, complete: true });
    const differing = result.differing as Array<{ id: string; replicas: Record<string, string | null> }>;
    expect(differing.map((d) => d.id)).toEqual(['d-0042', 'd-0100', 'zz-only-b']);
    expect(Object.values(differing[1]!.replicas).filter((v) => v === null)).toHaveLength(1);

    // human mode with the local file as a third replica: ids on stdout, the first two only
    const h = await verify(sig.url, ['--store', local, '--limit', '2']);
    expect(h.code, h.stderr).toBe(1);
    expect(h.stdout).toBe('aa-only-local\nd-0042\n');
    expect(h.stderr).toMatch(/different: 2\+ documents differ/);
    expect(h.stderr).toMatch(/more may differ/);
  });

  it('lists an RxDB peer as not verifiable and compares the others', async () => {
    const dir = await temp.make();
    const fileA = join(dir, 'a.ndjson');
    await writeDocsFile(fileA, docs(30));
    const sig = await signals.start();
    const a = await startPeer({ store: fileA, signal: sig.url, topic: TOPIC });
    const rx = await startRxdbPeer({ signal: sig.url, topic: TOPIC, seed: 0 });
    await rx.waitForCount(30);

    const r = await verify(sig.url, ['--json', '--store', fileA]);
    expect(r.code, r.stderr).toBe(0);
    const ev = events(r);
    expect(ev.find((e) => e.event === 'verify-peer' && e.kind === 'rxdb')).toMatchObject({ verifiable: false });
    const result = ev.find((e) => e.event === 'verified')!;
    expect(result).toMatchObject({ equal: true, notVerifiable: [{ kind: 'rxdb' }] });
    expect(result.replicas).toHaveLength(2);
    // RxDB never replicated with verify: its documents are unchanged, and p2psync still replicates with it
    await putDocs(fileA, [{ id: 'after-verify', title: 'x' }]);
    await rx.waitForCount(31);
    expect(a.child.exitCode).toBeNull();

    // without the local file there is only one verifiable replica: nothing to compare
    const alone = await verify(sig.url, ['--json', '--wait-peers', '2']);
    expect(alone.code, alone.stderr).toBe(3);
    expect(events(alone).find((e) => e.event === 'error')).toMatchObject({
      code: 'E_TIMEOUT',
      message: expect.stringMatching(/nothing to compare: 1 verifiable replica/),
    });
  });

  it('with a topic secret: verify with the secret compares the replicas; without it or with another it finds no peer', async () => {
    const dir = await temp.make();
    const fileA = join(dir, 'a.ndjson');
    const fileB = join(dir, 'b.ndjson');
    const secret = join(dir, 'secret');
    const wrong = join(dir, 'wrong');
    await writeFile(secret, 'verify-e2e-secret-0123456789\n');
    await writeFile(wrong, 'another-secret-9876543210\n');
    await writeDocsFile(fileA, docs(40));
    await writeDocsFile(fileB, docs(40));
    const sig = await signals.start();
    const [a, b] = await Promise.all([
      startPeer({ store: fileA, signal: sig.url, topic: TOPIC, extra: ['--secret-file', secret] }),
      startPeer({ store: fileB, signal: sig.url, topic: TOPIC, extra: ['--secret-file', secret] }),
    ]);
    await Promise.all([a.waitFor('synced', 20_000), b.waitFor('synced', 20_000)]);

    const r = await verify(sig.url, ['--json', '--secret-file', secret]);
    expect(r.code, r.stderr).toBe(0);
    const result = events(r).find((e) => e.event === 'verified')!;
    expect(result).toMatchObject({ equal: true, complete: true, differing: [] });
    expect((result.replicas as Array<{ documents: number }>).map((x) => x.documents)).toEqual([40, 40]);

    // The same topic without the secret, or with another one, is another room: the two joins are not there.
    for (const extra of [[], ['--secret-file', wrong]]) {
      const lost = await verify(sig.url, ['--json', ...extra], 4);
      expect(lost.code, lost.stderr).toBe(3);
      expect(events(lost).find((e) => e.event === 'error')).toMatchObject({
        code: 'E_TIMEOUT',
        message: expect.stringMatching(/no peer in topic/),
      });
      expect(events(lost).filter((e) => e.event === 'verify-peer')).toEqual([]);
    }
    await Promise.all([a.stop('SIGTERM'), b.stop('SIGTERM')]);
  });

  it('exits 3 when no peer is in the topic, or the signaling server cannot be reached', async () => {
    const sig = await signals.start();
    const r = await verify(sig.url, ['--json'], 2);
    expect(r.code).toBe(3);
    expect(events(r).find((e) => e.event === 'error')).toMatchObject({
      code: 'E_TIMEOUT',
      message: expect.stringMatching(/no peer in topic/),
    });

    const unreachable = await verify('ws://127.0.0.1:9', ['--json'], 2);
    expect(unreachable.code).toBe(3);
    expect(events(unreachable).find((e) => e.event === 'error')).toMatchObject({
      code: 'E_TIMEOUT',
      message: expect.stringMatching(/could not reach the signaling server/),
    });
  });

  it('refuses a missing store file (exit 2, before joining) and bad flags', async () => {
    const dir = await temp.make();
    const missing = await verify('ws://127.0.0.1:9', ['--json', '--store', join(dir, 'nope.json')], 2);
    expect(missing.code).toBe(2);
    expect(events(missing).find((e) => e.event === 'error')).toMatchObject({ code: 'E_BAD_OPTION' });
    const flags = [
      ['--topic', 'short'],
      ['--topic', TOPIC, '--limit', '0'],
      ['--topic', TOPIC, '--ice-server', 'http://x'],
    ];
    const results = await runCliMany(flags.map((f) => [['verify', ...f]] as const));
    flags.forEach((f, i) => expect({ f, code: results[i]!.code }).toEqual({ f, code: 2 }));
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { CliProcess } from '../helpers/spawn.js';
import {
  unexpectedRxdbErrors,
  masterOf,
  startRxdbPeer,
  startRxdbSignalServer,
  stopAllRxdbProcesses,
  type PlainDoc,
  type RxdbPeer,
} from '../helpers/rxdb.js';

interface SignalServer {
  url: string;
  stop(): Promise<unknown>;
}

async function startP2psyncSignal(): Promise<SignalServer> {
  const proc = new CliProcess(['signal', '--port', '0', '--json']);
  const ev = await proc.waitFor('listening');
  const port = Number(ev.port);
  expect(port).toBeGreaterThan(0);
  // The server binds 127.0.0.1 by default; RxDB clients use the URL unchanged.
  const url = typeof ev.url === 'string' ? ev.url : `ws://127.0.0.1:${port}`;
  expect(url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+/);
  return { url, stop: () => proc.stop() };
}

// Preset storage tokens make the roles deterministic: TOKEN_A is master of the pair, TOKEN_B its fork.
const TOKEN_A = 'aaaaaaaaaa';
const TOKEN_B = 'bbbbbbbbbb';
const SEED = 200;

function topic(): string {
  return `interop-${randomBytes(6).toString('hex')}`;
}

async function startPair(url: string): Promise<{ a: RxdbPeer; b: RxdbPeer }> {
  const t = topic();
  const [a, b] = await Promise.all([
    startRxdbPeer({ signal: url, topic: t, seed: SEED, prefix: 'A', token: TOKEN_A, expect: 2 * SEED, changes: true }),
    startRxdbPeer({ signal: url, topic: t, seed: SEED, prefix: 'B', token: TOKEN_B, expect: 2 * SEED, changes: true }),
  ]);
  return { a, b };
}

/** Both peers converge on the union of their seeds; then an update and a delete made on one side reach the other. */
async function exerciseReplication(a: RxdbPeer, b: RxdbPeer): Promise<void> {
  expect(a.storageToken).toBe(TOKEN_A);
  expect(b.storageToken).toBe(TOKEN_B);

  await Promise.all([a.waitFor('expected'), b.waitFor('expected')]);
  await Promise.all([a.waitForCount(2 * SEED), b.waitForCount(2 * SEED)]);
  const [dumpA, dumpB] = await Promise.all([a.dump(), b.dump()]);
  expect(dumpA).toHaveLength(2 * SEED);
  expect(dumpB).toEqual(dumpA);
  expect(dumpA[0]?.id).toBe('A-00000001');
  expect(dumpA[SEED]?.id).toBe('B-00000001');

  // The pair formed once, with the roles RxDB's token rule predicts.
  expect(masterOf(TOKEN_A, TOKEN_B)).toBe(TOKEN_A);
  const peerA = await a.waitFor('peer');
  const peerB = await b.waitFor('peer');
  expect(peerA).toMatchObject({ peerToken: TOKEN_B, role: 'master' });
  expect(peerB).toMatchObject({ peerToken: TOKEN_A, role: 'fork' });

  // B is the fork: its update travels up via masterWrite, its delete as a tombstone. A's update travels down
  // through the master's change stream.
  const updated: PlainDoc = { id: 'A-00000007', title: 'edited on B', n: 7, updatedAt: 1, extra: { nested: [1, 2] } };
  const fromA: PlainDoc = { id: 'B-00000009', title: 'edited on A', n: 9, updatedAt: 2 };
  await b.put(updated);
  expect(await b.remove('A-00000003')).toBe(true);
  await a.put(fromA);

  await a.waitForChange('A-00000007', (e) => (e.doc as PlainDoc).title === 'edited on B');
  await a.waitForChange('A-00000003', (e) => e.op === 'DELETE');
  await b.waitForChange('B-00000009', (e) => (e.doc as PlainDoc).title === 'edited on A');
  await Promise.all([a.waitForCount(2 * SEED - 1), b.waitForCount(2 * SEED - 1)]);

  expect(await a.get('A-00000007')).toEqual(updated);
  expect(await a.get('A-00000003')).toBeNull();
  expect(await b.get('B-00000009')).toEqual(fromA);
  const [afterA, afterB] = await Promise.all([a.dump(), b.dump()]);
  expect(afterA).toHaveLength(2 * SEED - 1);
  expect(afterB).toEqual(afterA);

  // Neither side saw an error other than the whitelisted ones of a peer going away.
  for (const p of [a, b]) expect(unexpectedRxdbErrors(p.events)).toEqual([]);
}

describe('stock RxDB 17 peers over signaling', () => {
  const servers: SignalServer[] = [];

  afterEach(async () => {
    await stopAllRxdbProcesses();
    await Promise.all(servers.splice(0).map((s) => s.stop()));
    await CliProcess.killAll();
  });

  it('replicate 2 x 200 docs, an update and a delete through `p2psync signal`', async () => {
    const server = await startP2psyncSignal();
    servers.push(server);
    const { a, b } = await startPair(server.url);
    await exerciseReplication(a, b);
  });

  it('replicate the same way through RxDB’s own signaling server (harness sanity check)', async () => {
    const server = await startRxdbSignalServer();
    servers.push(server);
    const { a, b } = await startPair(server.url);
    await exerciseReplication(a, b);
  });

  it('peers shut down cleanly on the exit command and on SIGTERM', async () => {
    const server = await startRxdbSignalServer();
    servers.push(server);
    const { a, b } = await startPair(server.url);
    await Promise.all([a.waitFor('peer'), b.waitFor('peer')]);
    expect(await a.exit()).toEqual({ code: 0, signal: null });
    expect(a.events.at(-1)?.event).toBe('stopped');
    // The remaining peer notices the pair going away.
    await b.waitFor('peer-left');
    expect(await b.stop()).toEqual({ code: 0, signal: null });
    expect(b.events.at(-1)?.event).toBe('stopped');
  });
});

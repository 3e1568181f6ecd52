/**
 * p2psync between two hosts behind NATs, with `p2psync signal` and coturn on a "public" network, all inside
 * network namespaces made for this run (see nat-lab.ts). Needs root, iproute2, iptables and coturn.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliProcess, runCli, type CliEvent } from '../helpers/spawn.js';
import { NatLab, type NatKind } from './nat-lab.js';

const TOPIC = 'nat-lab-topic';
const DOCS = 200;

const events = (stdout: string): CliEvent[] =>
  stdout
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l) as CliEvent);

/** A lab with coturn and a signaling server in the public namespace, and a live peer on host a with DOCS documents. */
function natFixture(kinds: { a: NatKind; b: NatKind }): {
  lab: () => NatLab;
  signal: () => string;
  startA: (ice: string[]) => Promise<CliProcess>;
} {
  let lab: NatLab | undefined;
  let signalUrl = '';
  const procs: CliProcess[] = [];
  beforeAll(async () => {
    lab = NatLab.create(kinds);
    await lab.startCoturn();
    const sig = new CliProcess(['signal', '--host', lab.pubAddress, '--port', '0', '--json'], { netns: lab.ns.pub });
    procs.push(sig);
    const listening = await sig.waitFor('listening', 15_000);
    signalUrl = `ws://${lab.pubAddress}:${String(listening['port'])}`;
  });
  afterAll(async () => {
    for (const p of procs) {
      try {
        process.kill(-p.child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await Promise.all(procs.map((p) => p.exited));
    lab?.destroy();
  });
  return {
    lab: () => lab!,
    signal: () => signalUrl,
    /** A live peer on host a (its own topic per call, so cases do not see each other's peers). */
    startA: async (ice: string[]) => {
      const l = lab!;
      const file = join(l.dir, `a-${procs.length}.ndjson`);
      writeFileSync(
        file,
        Array.from({ length: DOCS }, (_, i) => JSON.stringify({ id: `doc-${i}`, n: i })).join('\n') + '\n',
      );
      const a = new CliProcess(
        ['join', '--topic', `${TOPIC}-${procs.length}`, '--store', file, '--signal', signalUrl, '--json', ...ice],
        { netns: l.ns.a },
      );
      procs.push(a);
      await a.waitFor('signaling-connected', 15_000);
      return a;
    },
  };
}

/** `join --once` on host b in the topic of peer a. */
async function joinB(
  lab: NatLab,
  signal: string,
  a: CliProcess,
  ice: string[],
  timeoutS: number,
): Promise<{ code: number | null; events: CliEvent[]; stderr: string }> {
  const topic = a.child.spawnargs[a.child.spawnargs.indexOf('--topic') + 1]!;
  const file = join(lab.dir, `b-${topic}.ndjson`);
  writeFileSync(file, '');
  const r = await runCli(
    [
      'join',
      '--topic',
      topic,
      '--store',
      file,
      '--signal',
      signal,
      '--once',
      '--timeout',
      String(timeoutS),
      '--json',
      ...ice,
    ],
    {
      netns: lab.ns.b,
      timeoutMs: (timeoutS + 20) * 1000,
    },
  );
  return { code: r.code, events: events(r.stdout), stderr: r.stderr };
}

const log = (r: { events: CliEvent[]; stderr: string }): string =>
  r.events.map((e) => JSON.stringify(e)).join('\n') + r.stderr;

describe('between two cone NATs', () => {
  const f = natFixture({ a: 'cone', b: 'cone' });

  it('STUN suffices: a direct path through both NATs (server-reflexive or peer-reflexive), every document synced', async () => {
    const ice = ['--ice-server', f.lab().stunUrl()];
    const a = await f.startA(ice);
    const r = await joinB(f.lab(), f.signal(), a, ice, 30);
    expect(r.code, log(r)).toBe(0);
    const connected = r.events.find((e) => e.event === 'peer-connected');
    expect(connected?.['path'], log(r)).toMatchObject({
      relayed: false,
      remote: { type: expect.stringMatching(/^(srflx|prflx)$/), address: `10.${f.lab().net}.0.2` },
    });
    expect(r.events.find((e) => e.event === 'synced')).toMatchObject({ documents: DOCS });
  });

  it('relay-only (--ice-transport relay) goes through coturn', async () => {
    const ice = ['--ice-server', f.lab().turnUrl(), '--ice-transport', 'relay'];
    const a = await f.startA(ice);
    const r = await joinB(f.lab(), f.signal(), a, ice, 30);
    expect(r.code, log(r)).toBe(0);
    const path = r.events.find((e) => e.event === 'peer-connected')?.['path'] as
      { relayed: boolean; local: { type: string } } | undefined;
    expect(path, log(r)).toMatchObject({ relayed: true, local: { type: 'relay' } });
    expect(r.events.find((e) => e.event === 'synced')).toMatchObject({ documents: DOCS });
  });

  it('without an ICE server: an E_ICE_FAILED warning per attempt with the hint, and E_TIMEOUT says ICE failed', async () => {
    const a = await f.startA([]);
    const r = await joinB(f.lab(), f.signal(), a, ['--ice-server-file', '/dev/null'], 20);
    expect(r.code, log(r)).toBe(3);
    const warnings = r.events.filter((e) => e.event === 'warning' && e['code'] === 'E_ICE_FAILED');
    expect(warnings.length, log(r)).toBeGreaterThanOrEqual(1);
    expect(warnings[0]).toMatchObject({
      message: expect.stringMatching(/no ICE server is configured.*--ice-server stun:/),
      details: { candidates: { local: { host: 1, srflx: 0, relay: 0 }, remote: { host: 1 } } },
    });
    expect(r.events.find((e) => e.event === 'error')).toMatchObject({
      code: 'E_TIMEOUT',
      message: expect.stringMatching(/1 peer\(s\) seen through signaling, but 1 could not be connected \(ICE failed/),
      details: { diagnosis: 'ice-failed', peersSignaled: 1, peersConnected: 0 },
    });
  });

  it('doctor through a cone NAT: signaling, STUN towards two addresses with one mapping, TURN allocation', async () => {
    const l = f.lab();
    const r = await runCli(
      [
        'doctor',
        '--signal',
        f.signal(),
        '--ice-server',
        `${l.stunUrl()},${l.stunUrl(true)}`,
        '--ice-server',
        l.turnUrl(),
        '--json',
      ],
      { netns: l.ns.a, timeoutMs: 40_000 },
    );
    const checks = events(r.stdout).filter((e) => e.event === 'check');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(checks.map((c) => `${String(c['check'])}:${String(c['ok'])}`)).toEqual([
      'local:true',
      'signal:true',
      'stun:true',
      'stun:true',
      'turn:true',
      'nat:true',
    ]);
    expect(checks.find((c) => c['check'] === 'stun')).toMatchObject({
      details: { mapped: { address: `10.${l.net}.0.2` } },
    });
  });
});

describe('between two symmetric NATs', () => {
  const f = natFixture({ a: 'symmetric', b: 'symmetric' });

  it('STUN alone fails with a hint towards TURN', async () => {
    const ice = ['--ice-server', f.lab().stunUrl()];
    const a = await f.startA(ice);
    const r = await joinB(f.lab(), f.signal(), a, ice, 20);
    expect(r.code, log(r)).toBe(3);
    const warning = r.events.find((e) => e.event === 'warning' && e['code'] === 'E_ICE_FAILED');
    expect(warning?.['message'], log(r)).toMatch(/symmetric NAT.*TURN/);
    expect(r.events.find((e) => e.event === 'error')).toMatchObject({
      code: 'E_TIMEOUT',
      details: { diagnosis: 'ice-failed' },
    });
  });

  // With --ice-transport all, libjuice (node-datachannel 0.33) did not connect two symmetric NATs over TURN
  // within 30 s in this lab, although both sides had relay candidates; relay-only connects in a few seconds.
  it('TURN (relay-only) connects them through a relay, every document synced', async () => {
    const ice = ['--ice-server', `${f.lab().stunUrl()} ${f.lab().turnUrl()}`, '--ice-transport', 'relay'];
    const a = await f.startA(ice);
    const r = await joinB(f.lab(), f.signal(), a, ice, 30);
    expect(r.code, log(r)).toBe(0);
    expect(r.events.find((e) => e.event === 'peer-connected')?.['path'], log(r)).toMatchObject({ relayed: true });
    expect(r.events.find((e) => e.event === 'synced')).toMatchObject({ documents: DOCS });
  });

  it('wrong TURN credentials: the warning carries the 401 and doctor fails the allocation and finds the symmetric NAT', async () => {
    const l = f.lab();
    const a = await f.startA(['--ice-server', l.turnUrl()]);
    const wrong = l.turnUrl('not-the-password');
    const r = await joinB(l, f.signal(), a, ['--ice-server', wrong], 20);
    expect(r.code, log(r)).toBe(3);
    const warning = r.events.find((e) => e.event === 'warning' && e['code'] === 'E_ICE_FAILED');
    expect(warning, log(r)).toMatchObject({
      message: expect.stringMatching(/TURN server gave no relay address \(it answered 401 Unauthorized\)/),
      details: { turn: [{ ok: false, error: '401 Unauthorized' }] },
    });
    expect(JSON.stringify(r.events)).not.toContain('not-the-password');

    const d = await runCli(
      ['doctor', '--ice-server', `${l.stunUrl()},${l.stunUrl(true)}`, '--ice-server', wrong, '--json'],
      { netns: l.ns.b, timeoutMs: 40_000 },
    );
    expect(d.code, d.stdout).toBe(1);
    const checks = events(d.stdout).filter((e) => e.event === 'check');
    expect(checks.find((c) => c['check'] === 'turn')).toMatchObject({ ok: false, details: { errorCode: 401 } });
    expect(checks.find((c) => c['check'] === 'nat')).toMatchObject({ ok: false, details: { symmetric: true } });
  });
});

describe('a cone NAT against a symmetric NAT', () => {
  const f = natFixture({ a: 'cone', b: 'symmetric' });

  // libjuice (node-datachannel 0.33) in the default `all` mode never completes the relayed pair here, although
  // both sides allocate relay candidates (seen for 100 s with a longer connect timeout); relay-only works. The
  // diagnosis must point there.
  it('STUN and TURN in the default mode: no path, and the warning says to use --ice-transport relay', async () => {
    const ice = ['--ice-server', `${f.lab().stunUrl()},${f.lab().turnUrl()}`];
    const a = await f.startA(ice);
    const r = await joinB(f.lab(), f.signal(), a, ice, 20);
    expect(r.code, log(r)).toBe(3);
    const warning = r.events.find((e) => e.event === 'warning' && e['code'] === 'E_ICE_FAILED');
    expect(warning, log(r)).toMatchObject({
      message: expect.stringMatching(/use --ice-transport relay on both sides/),
      details: { candidates: { local: { srflx: 1, relay: 1 }, remote: { srflx: 1, relay: 1 } } },
    });
  });

  it('relay-only on both sides connects through coturn, every document synced', async () => {
    const ice = ['--ice-server-file', f.lab().iceFile([f.lab().turnUrl()]), '--ice-transport', 'relay'];
    const a = await f.startA(ice);
    const r = await joinB(f.lab(), f.signal(), a, ice, 30);
    expect(r.code, log(r)).toBe(0);
    expect(r.events.find((e) => e.event === 'peer-connected')?.['path'], log(r)).toMatchObject({ relayed: true });
    expect(r.events.find((e) => e.event === 'synced')).toMatchObject({ documents: DOCS });
  });
});

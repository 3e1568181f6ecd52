import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { describe, expect, it } from 'vitest';
import { e2eFixture, readDocs, startPeer, waitConverged, writeDocsFile } from '../helpers/e2e.js';
import { runCli, runCliMany } from '../helpers/spawn.js';

/*
 * Issue 13 end to end, with real processes: a secret topic through a relay that records every frame, peers with a
 * wrong secret, no secret, or an unlisted device id getting nothing, and bad trust input failing before anything
 * is opened.
 */

const relays: Relay[] = [];
const { temp, signals } = e2eFixture(async () => {
  await Promise.all(relays.splice(0).map((r) => r.close()));
});

const TOPIC = 'trusted-topic-e2e';
const CONNECT_MS = 20_000;
const seed = (prefix: string, n: number): Array<Record<string, unknown>> =>
  Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${i}`, from: prefix, n: i }));

/** A WebSocket relay in front of a signaling server that keeps every frame in both directions. */
interface Relay {
  url: string;
  frames: string[];
  close(): Promise<void>;
}

async function startRelay(target: string): Promise<Relay> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const frames: string[] = [];
  server.on('connection', (client) => {
    const upstream = new WebSocket(target);
    const pending: string[] = [];
    const text = (d: RawData): string =>
      (Array.isArray(d) ? Buffer.concat(d) : Buffer.from(d as Buffer)).toString('utf8');
    client.on('message', (d) => {
      const t = text(d);
      frames.push(t);
      if (upstream.readyState === WebSocket.OPEN) upstream.send(t);
      else pending.push(t);
    });
    upstream.on('open', () => pending.splice(0).forEach((t) => upstream.send(t)));
    upstream.on('message', (d) => {
      const t = text(d);
      frames.push(t);
      client.send(t);
    });
    upstream.on('close', () => client.close());
    client.on('close', () => upstream.close());
    upstream.on('error', () => client.close());
  });
  const port = (server.address() as { port: number }).port;
  const relay: Relay = {
    url: `ws://127.0.0.1:${port}`,
    frames,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of server.clients) c.terminate();
        server.close(() => resolve());
      }),
  };
  relays.push(relay);
  return relay;
}

async function secretFile(dir: string, name: string, secret: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, `${secret}\n`, { mode: 0o600 });
  return file;
}

async function deviceId(store: string): Promise<string> {
  const r = await runCli(['id', '--store', store]);
  expect(r.code).toBe(0);
  return r.stdout.trim();
}

describe('peers you trust (topic secret, device ids)', () => {
  it('peers with the same secret sync through a relay that sees no topic, SDP or candidate', async () => {
    const dir = await temp.make();
    const [fileA, fileB] = [join(dir, 'a.ndjson'), join(dir, 'b.json')];
    await writeDocsFile(fileA, seed('a', 3));
    await writeDocsFile(fileB, seed('b', 3));
    const sig = await signals.start();
    const relay = await startRelay(sig.url);
    const secret = 'correct horse battery staple';
    const [a, b] = await Promise.all([
      startPeer({
        store: fileA,
        topic: TOPIC,
        signal: relay.url,
        extra: ['--secret-file', await secretFile(dir, 'secret', secret)],
      }),
      startPeer({ store: fileB, topic: TOPIC, signal: relay.url, env: { P2PSYNC_SECRET: secret } }),
    ]);
    await Promise.all([a.waitFor('peer-connected', CONNECT_MS), b.waitFor('peer-connected', CONNECT_MS)]);
    await waitConverged([fileA, fileB], 6);

    const joined = a.events.find((e) => e.event === 'joined')!;
    expect(joined).toMatchObject({ secret: true, deviceId: await deviceId(fileA) });
    const signalFrames = relay.frames.filter((f) => f.includes('"type":"signal"'));
    expect(signalFrames.length).toBeGreaterThan(0); // the relay did carry the negotiation
    const all = relay.frames.join('\n');
    for (const plain of [
      TOPIC,
      'trusted',
      'v=0',
      'sdp',
      'a=fingerprint',
      'candidate',
      'offer',
      'answer',
      'ice-ufrag',
      secret,
    ]) {
      expect(all, `relay saw "${plain}"`).not.toContain(plain);
    }
    for (const f of relay.frames.filter((f) => f.includes('"type":"join"')))
      expect(JSON.parse(f).room).toMatch(/^p2ps-[A-Za-z0-9_-]{43}$/);
    for (const f of signalFrames) expect(Object.keys(JSON.parse(f).data)).toEqual(['sealed']);
    expect([...a.events, ...b.events].filter((e) => e.event === 'error' || e.event === 'peer-rejected')).toEqual([]);
  });

  it('a peer with a wrong secret and a peer without a secret get 0 documents and give none', async () => {
    const dir = await temp.make();
    const files = {
      a: join(dir, 'a.ndjson'),
      wrong: join(dir, 'wrong.ndjson'),
      none: join(dir, 'none.ndjson'),
      c: join(dir, 'c.ndjson'),
    };
    await writeDocsFile(files.a, seed('a', 5));
    await writeDocsFile(files.wrong, seed('wrong', 2));
    await writeDocsFile(files.none, seed('none', 2));
    const sig = await signals.start();
    const good = await secretFile(dir, 'good', 'the right secret');
    const bad = await secretFile(dir, 'bad', 'the wrong secret');
    const a = await startPeer({ store: files.a, topic: TOPIC, signal: sig.url, extra: ['--secret-file', good] });
    const wrong = await startPeer({ store: files.wrong, topic: TOPIC, signal: sig.url, extra: ['--secret-file', bad] });
    const none = await startPeer({ store: files.none, topic: TOPIC, signal: sig.url });
    // Barrier: a peer with the right secret, started last, gets A's documents; the other two were in the topic
    // before it and could have connected just as well.
    const c = await startPeer({ store: files.c, topic: TOPIC, signal: sig.url, extra: ['--secret-file', good] });
    await Promise.all([a.waitFor('peer-connected', CONNECT_MS), c.waitFor('peer-connected', CONNECT_MS)]);
    await waitConverged([files.a, files.c], 5);

    expect([...(await readDocs(files.wrong)).keys()].sort()).toEqual(['wrong-0', 'wrong-1']);
    expect([...(await readDocs(files.none)).keys()].sort()).toEqual(['none-0', 'none-1']);
    for (const p of [wrong, none]) expect(p.events.filter((e) => e.event === 'peer-connected')).toEqual([]);
    expect(a.events.filter((e) => e.event === 'peer-connected')).toHaveLength(1);
    expect(wrong.events.find((e) => e.event === 'joined')).toMatchObject({ secret: true });
    expect(none.events.find((e) => e.event === 'joined')).toMatchObject({ secret: false });
  });

  it('an unlisted device id is rejected (0 documents either way), a listed one syncs', async () => {
    const dir = await temp.make();
    const files = { a: join(dir, 'a.ndjson'), b: join(dir, 'b.ndjson'), c: join(dir, 'c.ndjson') };
    await writeDocsFile(files.a, seed('a', 4));
    await writeDocsFile(files.b, seed('b', 2));
    const [idA, idB, idC] = [await deviceId(files.a), await deviceId(files.b), await deviceId(files.c)];
    expect(new Set([idA, idB, idC]).size).toBe(3);
    // a and c serve each other only (b shares the secret but is not listed: had c no allowlist, c would sync with
    // b and pass b's documents on to a, as any trusted peer may)
    const allow = join(dir, 'allowed-peers');
    await writeFile(allow, `# our two servers\n${idA}  # a\n${idC.toLowerCase()}  # c\n`);
    const sig = await signals.start();
    const secret = await secretFile(dir, 'secret', 'shared');
    const a = await startPeer({
      store: files.a,
      topic: TOPIC,
      signal: sig.url,
      extra: ['--secret-file', secret, '--allow-peers', allow],
    });
    expect(a.events.find((e) => e.event === 'joined')).toMatchObject({ secret: true, allowPeers: 2 });
    const b = await startPeer({ store: files.b, topic: TOPIC, signal: sig.url, extra: ['--secret-file', secret] });
    const rejected = await a.waitFor((e) => e.event === 'peer-rejected', CONNECT_MS);
    expect(rejected).toMatchObject({ topic: TOPIC, deviceId: idB, reason: `device id ${idB} is not in the allowlist` });
    await b.waitFor((e) => e.event === 'peer-rejected', CONNECT_MS); // b saw the link close mid-handshake

    const c = await startPeer({
      store: files.c,
      topic: TOPIC,
      signal: sig.url,
      extra: ['--secret-file', secret, '--allow-peers', allow],
    });
    await c.waitFor('peer-connected', CONNECT_MS);
    await waitConverged([files.a, files.c], 4);

    expect([...(await readDocs(files.b)).keys()].sort()).toEqual(['b-0', 'b-1']);
    for (const f of [files.a, files.c])
      expect([...(await readDocs(f)).keys()].some((id) => id.startsWith('b-'))).toBe(false);
    expect(
      b.events.filter((e) => e.event === 'peer-connected' || e.event === 'pulled' || e.event === 'pushed'),
    ).toEqual([]);
    expect(a.events.filter((e) => e.event === 'peer-connected').map((e) => e.peerId)).toEqual([
      c.events.find((e) => e.event === 'signaling-connected')!.peerId,
    ]);
  });

  it('bad trust input exits 2 before anything is opened', async () => {
    const dir = await temp.make();
    const store = join(dir, 'never.ndjson');
    await writeFile(join(dir, 'empty'), '\n');
    await writeFile(join(dir, 'malformed'), 'AB:CD:EF\n');
    await mkdir(join(dir, 'a-dir'));
    const cases: Array<[string[], string, Record<string, string>?]> = [
      [['--secret-file', join(dir, 'missing')], 'E_SECRET'],
      [['--secret-file', join(dir, 'empty')], 'E_SECRET'],
      [['--secret-file', join(dir, 'a-dir')], 'E_SECRET'],
      [[], 'E_SECRET', { P2PSYNC_SECRET: ' ' }],
      [['--secret-file', join(dir, 'empty')], 'E_SECRET', { P2PSYNC_SECRET: 'x' }],
      [['--allow-peers', join(dir, 'missing')], 'E_ALLOWLIST'],
      [['--allow-peers', join(dir, 'empty')], 'E_ALLOWLIST'],
      [['--allow-peers', join(dir, 'malformed')], 'E_ALLOWLIST'],
    ];
    // an unreachable signaling URL: had anything been opened, the run would not end at once with exit 2
    const results = await runCliMany(
      cases.map(
        ([extra, , env]) =>
          [
            ['join', '--topic', TOPIC, '--store', store, '--signal', 'ws://127.0.0.1:9', '--json', ...extra],
            { env },
          ] as const,
      ),
    );
    cases.forEach(([extra, code], i) => {
      expect({ extra, code: results[i]!.code }).toEqual({ extra, code: 2 });
      expect(results[i]!.stdout).toContain(`"code":"${code}"`);
    });
    await expect(stat(store)).rejects.toThrow(/ENOENT/);
    await expect(stat(`${store}.p2psync.identity.pem`)).rejects.toThrow(/ENOENT/);
  });

  it('--secret works but warns that it shows in ps', async () => {
    const dir = await temp.make();
    const sig = await signals.start();
    const p = await startPeer({
      store: join(dir, 's.ndjson'),
      topic: TOPIC,
      signal: sig.url,
      extra: ['--secret', 'on-the-command-line'],
    });
    expect(p.events.find((e) => e.event === 'warning')).toMatchObject({ code: 'W_SECRET_ON_COMMAND_LINE' });
  });

  it('p2psync id is stable, and is the id join presents', async () => {
    const dir = await temp.make();
    const store = join(dir, 'x.json');
    const first = await runCli(['id', '--store', store, '--json']);
    expect(first.code).toBe(0);
    const event = JSON.parse(first.stdout.trim()) as Record<string, unknown>;
    expect(event).toMatchObject({ event: 'identity', created: true, file: `${store}.p2psync.identity.pem` });
    expect(event.deviceId).toMatch(/^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/);
    expect(await deviceId(store)).toBe(event.deviceId);
    await writeFile(`${store}.p2psync.identity.pem`, 'damaged');
    const damaged = await runCli(['id', '--store', store]);
    expect(damaged.code).toBe(2);
    expect(damaged.stderr).toContain('E_IDENTITY');
  });
});

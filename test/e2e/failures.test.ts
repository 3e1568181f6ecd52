import { createServer, type Server, type Socket } from 'node:net';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { startSignalServer } from '../../src/signaling/server.js';
import { e2eFixture } from '../helpers/e2e.js';
import { CliProcess, runCli, type CliEvent } from '../helpers/spawn.js';

const { temp } = e2eFixture();
const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

/** A port that nothing listens on: bound once to learn a free number, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A TCP server that accepts connections and never says a word: a signaling server that never answers. */
async function silentServer(): Promise<number> {
  const server = createServer((socket) => sockets.push(socket));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as { port: number }).port;
}

function events(stdout: string): CliEvent[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as CliEvent);
}

const JOIN = ['join', '--topic', 'failures-topic', '--ice-bind', '127.0.0.1'];

describe('join: a signaling server that is never reached', () => {
  it('--once exits 3 with E_UNREACHABLE (not E_TIMEOUT) once --timeout passes', async () => {
    const dir = await temp.make();
    const port = await closedPort();
    const r = await runCli([
      ...JOIN,
      '--store',
      join(dir, 'a.ndjson'),
      '--signal',
      `ws://127.0.0.1:${port}`,
      '--once',
      '--timeout',
      '2',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(3);
    const evs = events(r.stdout);
    const errors = evs.filter((e) => e.event === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'E_UNREACHABLE' });
    expect(errors[0]!.message).toMatch(/ECONNREFUSED/);
    expect(evs.at(-1)).toMatchObject({ event: 'closed', reason: 'unreachable', exitCode: 3 });
  });

  it('--once without --timeout gives up after --connect-timeout on a server that never answers', async () => {
    const dir = await temp.make();
    const port = await silentServer();
    const r = await runCli([
      ...JOIN,
      '--store',
      join(dir, 'a.ndjson'),
      '--signal',
      `ws://127.0.0.1:${port}`,
      '--once',
      '--connect-timeout',
      '1.5',
    ]);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(
      /^p2psync: could not connect to the signaling server .* within 1\.5 s.* \[E_UNREACHABLE\]$/m,
    );
  });

  it('a live join keeps retrying and warns with E_UNREACHABLE and the next retry time', async () => {
    const dir = await temp.make();
    const port = await closedPort();
    const p = new CliProcess([
      ...JOIN,
      '--store',
      join(dir, 'a.ndjson'),
      '--signal',
      `ws://127.0.0.1:${port}`,
      '--json',
    ]);
    const nth = (n: number) =>
      p.waitFor(() => p.events.filter((e) => e.event === 'warning' && e.code === 'E_UNREACHABLE').length >= n);
    await nth(2);
    const warnings = p.events.filter((e) => e.event === 'warning');
    const details = warnings[0]!.details as { retryInMs: number; retryAt: string; url: string };
    expect(details.url).toBe(`ws://127.0.0.1:${port}/`);
    expect(Date.parse(details.retryAt)).toBeGreaterThan(Date.parse(warnings[0]!.time as string));
    expect((warnings[1]!.details as { retryInMs: number }).retryInMs).toBeGreaterThan(details.retryInMs);
    expect(p.events.some((e) => e.event === 'error')).toBe(false);
    expect(await p.stop()).toMatchObject({ code: 0 });
  });

  it('a refused token is printed once, as p2psync: ... [E_AUTH], and exits 2', async () => {
    const dir = await temp.make();
    const server = await startSignalServer({ port: 0, host: '127.0.0.1', token: 'the-right-token-0123456789' });
    try {
      const r = await runCli([
        ...JOIN,
        '--store',
        join(dir, 'a.ndjson'),
        '--signal',
        `ws://127.0.0.1:${server.port}/?token=wrong`,
        '--once',
      ]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.match(/E_AUTH/g)).toHaveLength(1);
      expect(r.stderr).toMatch(/^p2psync: the signaling server .* refused the connection \(HTTP 401\).*\[E_AUTH\]$/m);
      expect(r.stderr).not.toContain('wrong');
    } finally {
      await server.close({ timeoutMs: 500 });
    }
  });
});

describe('join: every flag is checked before the first side effect', () => {
  const refused: Array<[string, string[]]> = [
    ['an ICE bind address that is not an IP', ['--ice-bind', '999.1.2.3']],
    ['an ICE bind address of another machine', ['--ice-bind', '192.0.2.77']],
    ['an empty --lww-field', ['--conflict', 'lww', '--lww-field', '']],
    ['an unknown --conflict', ['--conflict', 'newest']],
    ['an invalid --ice-server', ['--ice-server', 'http://stun.example']],
    ['a TURN server without credentials', ['--ice-server', 'turn:turn.example:3478']],
    ['a short topic', ['--topic', 'abc']],
    ['a signal URL that is not ws', ['--signal', 'http://127.0.0.1:1']],
    ['--timeout without --once', ['--timeout', '5']],
    ['--connect-timeout without --once', ['--connect-timeout', '5']],
    ['a zero --connect-timeout', ['--once', '--connect-timeout', '0']],
    ['a zero --batch-size', ['--batch-size', '0']],
    ['an empty --key', ['--key', '']],
    ['an empty --collection', ['--collection', ' ']],
    ['a bad --storage-token', ['--storage-token', 'has space']],
    ['--pull-only with --push-only', ['--pull-only', '--push-only']],
  ];

  // In process (main() is what the binary runs) to spare 16 process starts; the binary is driven below.
  it.each(refused)('%s: exit 2, and no file, sidecar or lock is created', async (_name, flags) => {
    const dir = await temp.make();
    // A flag that slipped through would run against a closed port (never the embedded default's fixed port).
    const signal = flags.includes('--signal') ? [] : ['--signal', `ws://127.0.0.1:${await closedPort()}`];
    const stderr = new PassThrough();
    let text = '';
    stderr.on('data', (d: Buffer) => (text += d.toString()));
    const code = await main(
      ['join', '--topic', 'failures-topic', '--store', join(dir, 'a.json'), ...signal, ...flags],
      { stdout: new PassThrough(), stderr, env: {} },
    );
    expect(code, text).toBe(2);
    expect(text).toMatch(/error|p2psync:/);
    expect(await readdir(dir)).toEqual([]);
  });

  it('leaves an existing store untouched (no sidecar, no lock) when a flag is refused', async () => {
    const dir = await temp.make();
    const file = join(dir, 'a.json');
    await writeFile(file, '[{"id":"a"}]');
    const r = await runCli([
      'join',
      '--topic',
      'failures-topic',
      '--store',
      file,
      '--signal',
      `ws://127.0.0.1:${await closedPort()}`,
      '--ice-bind',
      '999.1.2.3',
      '--json',
    ]);
    expect(r.code).toBe(2);
    expect(events(r.stdout)).toEqual([expect.objectContaining({ event: 'error', code: 'E_USAGE' })]);
    expect(await readdir(dir)).toEqual(['a.json']);
    expect(await readFile(file, 'utf8')).toBe('[{"id":"a"}]');
  });
});

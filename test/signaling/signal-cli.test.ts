import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CliProcess, runCli, runCliMany, type CliEvent } from '../helpers/spawn.js';
import { Harness, TLS_CERT, TLS_CERT_PATH, TLS_KEY_PATH, httpGet, upgradeStatus } from './server-helpers.js';

const h = new Harness();
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'p2psync-signal-cli-'));
});
afterEach(async () => {
  await CliProcess.killAll();
  await h.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

async function listening(p: CliProcess): Promise<CliEvent & { port: number; url: string }> {
  const ev = await p.waitFor('listening');
  return ev as CliEvent & { port: number; url: string };
}

describe('p2psync signal (CLI)', () => {
  it('prints a listening event with the real port first, serves, and exits 0 on SIGTERM', async () => {
    const p = new CliProcess(['signal', '--port', '0', '--json']);
    const ev = await listening(p);
    expect(p.events[0]).toBe(ev);
    expect(ev).toEqual({
      event: 'listening',
      host: '127.0.0.1',
      port: expect.any(Number),
      url: `ws://127.0.0.1:${ev.port}/`,
      tls: false,
      auth: false,
      v: 1,
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(ev.port).toBeGreaterThan(0);
    const health = await httpGet(`http://127.0.0.1:${ev.port}/healthz`);
    expect(JSON.parse(health.body)).toMatchObject({ status: 'ok' });
    const c = await h.member(ev.url, 'cli-room');
    p.kill('SIGTERM');
    expect(await c.closedWithin()).toEqual({ code: 1001, reason: 'server shutting down' });
    expect(await p.exited).toEqual({ code: 0, signal: null });
    expect(p.events.at(-1)).toMatchObject({ event: 'closed', reason: 'SIGTERM', exitCode: 0 });
    expect(p.events.map((e) => e.event)).toEqual(['listening', 'closed']);
  });

  it('exits 130 on SIGINT', async () => {
    const p = new CliProcess(['signal', '--port', '0', '--json']);
    await listening(p);
    p.kill('SIGINT');
    expect(await p.exited).toEqual({ code: 130, signal: null });
    expect(p.events.at(-1)).toMatchObject({ event: 'closed', reason: 'SIGINT', exitCode: 130 });
  });

  it('exits 1 with E_ADDR_IN_USE when the port is taken', async () => {
    const taken = await h.server();
    const json = await runCli(['signal', '--port', String(taken.port), '--json']);
    expect(json.code).toBe(1);
    const events = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as CliEvent);
    expect(events).toEqual([expect.objectContaining({ event: 'error', code: 'E_ADDR_IN_USE' })]);
    const human = await runCli(['signal', '--port', String(taken.port)]);
    expect(human.code).toBe(1);
    expect(human.stdout).toBe('');
    expect(human.stderr).toMatch(/already in use.*\[E_ADDR_IN_USE\]/);
  });

  it('exits 2 on bad flags', async () => {
    const cases = [
      ['--port', 'abc'],
      ['--port', '70000'],
      ['--max-peers-per-room', '0'],
      ['--max-frame-bytes', '-5'],
      ['--bogus'],
      ['--token', 'x'],
    ];
    const [half, ...results] = await runCliMany([
      [['signal', '--port', '0', '--tls-cert', TLS_CERT_PATH, '--json']],
      ...cases.map((args) => [['signal', ...args]] as const),
    ]);
    cases.forEach((args, i) => expect({ args, code: results[i]!.code }).toEqual({ args, code: 2 }));
    expect(half!.code).toBe(2);
    expect(half!.stdout).toMatch(/"code":"E_USAGE"/);
  });

  it('exits 2 when a TLS or token file is unreadable or empty', async () => {
    const missing = join(dir, 'missing.pem');
    const garbage = join(dir, 'garbage.pem');
    writeFileSync(garbage, 'not pem');
    const empty = join(dir, 'empty-token');
    writeFileSync(empty, '\n');
    const [tls, bad, token, emptyToken] = await runCliMany([
      [['signal', '--port', '0', '--tls-cert', missing, '--tls-key', TLS_KEY_PATH, '--json']],
      [['signal', '--port', '0', '--tls-cert', garbage, '--tls-key', TLS_KEY_PATH, '--json']],
      [['signal', '--port', '0', '--token-file', join(dir, 'nope')]],
      [['signal', '--port', '0', '--token-file', empty]],
    ]);
    expect(tls!.code).toBe(2);
    expect(JSON.parse(tls!.stdout)).toMatchObject({ event: 'error', code: 'E_TLS_FILE', details: { file: missing } });
    expect(bad!.code).toBe(2);
    expect(JSON.parse(bad!.stdout)).toMatchObject({ event: 'error', code: 'E_TLS_FILE' });
    expect(token!.code).toBe(2);
    expect(token!.stderr).toMatch(/token file.*\[E_TOKEN_FILE\]/);
    expect(emptyToken!.code).toBe(2);
  });

  it('requires the token from --token-file, trimmed of its trailing newline', async () => {
    const file = join(dir, 'token');
    writeFileSync(file, 'file-token-0123456789\n');
    const p = new CliProcess(['signal', '--port', '0', '--json', '--token-file', file]);
    const ev = await listening(p);
    expect(ev).toMatchObject({ auth: true, tls: false });
    expect(await upgradeStatus(ev.url)).toBe(401);
    expect(await upgradeStatus(`${ev.url}?token=file-token-0123456789`)).toBe(101);
    expect(p.events.some((e) => e.event === 'warning')).toBe(false);
  });

  it('takes the token itself from P2PSYNC_TOKEN, limits from P2PSYNC_* env vars, and warns on a short token', async () => {
    const p = new CliProcess(['signal', '--json'], {
      env: { P2PSYNC_TOKEN: 'short', P2PSYNC_PORT: '0', P2PSYNC_MAX_PEERS_PER_ROOM: '1' },
    });
    const ev = await listening(p);
    expect(ev.auth).toBe(true);
    await p.waitFor((e) => e.event === 'warning' && e.code === 'W_WEAK_TOKEN');
    const url = `${ev.url}?token=short`;
    await h.member(url, 'env-room');
    const second = await h.client(url);
    await second.init();
    second.send({ type: 'join', room: 'env-room' });
    expect((await second.closedWithin()).code).toBe(4006);
  });

  it('serves wss:// with --tls-cert and --tls-key', async () => {
    const p = new CliProcess([
      'signal',
      '--port',
      '0',
      '--json',
      '--tls-cert',
      TLS_CERT_PATH,
      '--tls-key',
      TLS_KEY_PATH,
    ]);
    const ev = await listening(p);
    expect(ev).toMatchObject({ tls: true, url: `wss://127.0.0.1:${ev.port}/` });
    const c = await h.client(ev.url, { ca: TLS_CERT });
    expect(await c.init()).toMatch(/^[a-z]{16}$/);
  });

  it('prints a readable line on stderr and nothing on stdout in human mode', async () => {
    const p = new CliProcess(['signal', '--port', '0']);
    const line = await new Promise<string>((resolve, reject) => {
      let text = '';
      const timer = setTimeout(() => reject(new Error(`no listening line; stderr: ${text}`)), 15_000);
      p.child.stderr!.on('data', (d: string) => {
        text += d;
        const m = /listening on \S+/.exec(text);
        if (m) {
          clearTimeout(timer);
          resolve(m[0]);
        }
      });
    });
    expect(line).toMatch(/^listening on ws:\/\/127\.0\.0\.1:\d+\/$/);
    expect(await p.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(p.events).toEqual([]);
    expect(p.stderr).toMatch(/stopped/);
  });

  it('documents every flag with its env var and ends help with examples', async () => {
    const r = await runCli(['signal', '--help']);
    expect(r.code).toBe(0);
    for (const env of [
      'P2PSYNC_PORT',
      'P2PSYNC_HOST',
      'P2PSYNC_TOKEN_FILE',
      'P2PSYNC_TLS_CERT',
      'P2PSYNC_TLS_KEY',
      'P2PSYNC_MAX_FRAME_BYTES',
      'P2PSYNC_MAX_ROOMS_PER_SOCKET',
      'P2PSYNC_MAX_PEERS_PER_ROOM',
      'P2PSYNC_MAX_FRAMES_PER_SECOND',
      'P2PSYNC_MAX_CONNECTIONS',
      'P2PSYNC_JSON',
      'P2PSYNC_TOKEN',
    ]) {
      expect(r.stdout).toContain(env);
    }
    expect(r.stdout).not.toMatch(/^\s+--token\s/m);
    expect(r.stdout.trimEnd()).toMatch(/Examples:\n( {2}\$ .*p2psync signal.*\n?)+$/);
  });
});

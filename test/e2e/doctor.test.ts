import { createSocket } from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { natVerdict } from '../../src/doctor/index.js';
import { e2eFixture } from '../helpers/e2e.js';
import { runCli, type CliEvent } from '../helpers/spawn.js';

const { signals } = e2eFixture();

const events = (stdout: string): CliEvent[] =>
  stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as CliEvent);

/** A loopback UDP port nobody answers on (bound, then closed). */
async function silentPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

describe('p2psync doctor', () => {
  it('passes a working signaling server with timings, and exits 1 with a reason for a STUN server that is silent', async () => {
    const sig = await signals.start();
    const ok = await runCli(['doctor', '--signal', sig.url, '--ice-bind', '127.0.0.1', '--json'], {
      timeoutMs: 30_000,
    });
    expect(ok.code, ok.stderr).toBe(0);
    const signal = events(ok.stdout).find((e) => e.event === 'check' && e.check === 'signal');
    expect(signal).toMatchObject({
      ok: true,
      details: {
        connectMs: expect.any(Number),
        joinMs: expect.any(Number),
        signalMs: expect.any(Number),
        leaveMs: expect.any(Number),
      },
    });

    const port = await silentPort();
    const bad = await runCli(
      ['doctor', '--ice-server', `stun:127.0.0.1:${port}`, '--ice-bind', '127.0.0.1', '--timeout', '1', '--json'],
      { timeoutMs: 30_000 },
    );
    expect(bad.code, bad.stderr).toBe(1);
    expect(events(bad.stdout).find((e) => e.check === 'stun')).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/no response from 127\.0\.0\.1/),
    });
  });

  it('fails the signaling check of a server that is not there, and refuses bad flags with exit 2', async () => {
    const port = await silentPort();
    const down = await runCli(['doctor', '--signal', `ws://127.0.0.1:${port}`, '--timeout', '1', '--json'], {
      timeoutMs: 30_000,
    });
    expect(down.code, down.stderr).toBe(1);
    expect(events(down.stdout).find((e) => e.check === 'signal')).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^connect failed/),
    });
    const relay = await runCli(['doctor', '--ice-server', 'stun:127.0.0.1:3478', '--ice-transport', 'relay']);
    expect(relay.code).toBe(2);
    expect(relay.stderr).toMatch(/relay needs a TURN server/);
  });
});

describe('natVerdict', () => {
  const m = (target: string, port: number) => ({ target, mapped: { address: '198.51.100.9', port } });
  it('calls one mapping for every destination a cone NAT, and per-destination mappings symmetric', () => {
    expect(natVerdict([m('stun:a', 5000), m('stun:b', 5000)], false)).toMatchObject({
      ok: true,
      reason: expect.stringMatching(/STUN suffices/),
    });
    expect(natVerdict([m('stun:a', 5000), m('stun:b', 5001)], false)).toMatchObject({
      ok: false,
      details: { symmetric: true },
      reason: expect.stringMatching(/symmetric NAT.*add --ice-server turn:/),
    });
    expect(natVerdict([m('stun:a', 5000), m('stun:b', 5001)], true)).toMatchObject({ ok: true });
  });
});

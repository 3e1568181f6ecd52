// Connect time with and without a topic secret (issue 13): two fresh p2psync peers on empty stores join a topic,
// and the second one is timed from its `joined` event to its `peer-connected` event (signaling, WebRTC, the trust
// handshake when there is a secret, and the replication token handshake). Runs alternate between the two modes so
// both see the same machine load. `joined` comes after the key derivation (scrypt, once per topic at start-up),
// which is reported apart as spawn → joined.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { P2pPeer, startSignal, topicName } from '../lib/peers.mjs';
import { median, percentile } from '../lib/stats.mjs';
import { attempt } from '../lib/repeat.mjs';
import { ms } from '../lib/format.mjs';

/** A connect slower than this waited for the DTLS retransmit (about 1 s; STACK.md). */
const STALL_MS = 500;
const MODES = ['plain', 'secret'];

export async function runConnect(ctx) {
  if (!ctx.avail.join) return { skipped: 'not available yet (`p2psync join` is not built)' };
  const signal = await startSignal(ctx.avail.signal ? 'p2psync' : 'rxdb');
  const dir = mkdtempSync(join(ctx.tmp, 'connect-'));
  const secretFile = join(dir, 'secret');
  writeFileSync(secretFile, 'bench secret\n', { mode: 0o600 });
  const samples = { plain: [], secret: [] };
  try {
    for (let r = 0; r < ctx.connectRuns; r++) {
      // which mode goes first alternates too, so neither always runs right after the other's teardown
      for (const mode of r % 2 === 0 ? MODES : [...MODES].reverse()) {
        ctx.log(`connect ${mode} run ${r + 1}/${ctx.connectRuns}`);
        samples[mode].push(
          await attempt(() => connectOnce(ctx, signal, dir, mode === 'secret' ? ['--secret-file', secretFile] : [])),
        );
      }
    }
  } finally {
    await signal.proc.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const rows = MODES.map((mode) => {
    const ok = samples[mode].filter((x) => !x.error);
    const connect = ok.map((x) => x.connectMs);
    return {
      mode,
      p50: median(connect),
      p90: percentile(connect, 90),
      stalled: connect.filter((x) => x > STALL_MS).length,
      fastP50: median(connect.filter((x) => x <= STALL_MS)),
      startup: median(ok.map((x) => x.startupMs)),
      ok: ok.length,
      runs: samples[mode].length,
      errors: samples[mode].filter((x) => x.error).map((x) => x.error),
    };
  });
  return { rows, config: { runs: ctx.connectRuns } };
}

async function connectOnce(ctx, signal, dir, extra) {
  const topic = topicName('connect');
  const run = mkdtempSync(join(dir, 'run-'));
  const peers = [];
  try {
    const a = new P2pPeer({ label: 'connect a', signal: signal.url, topic, store: join(run, 'a.ndjson'), extra });
    peers.push(a);
    await a.ready();
    const b = new P2pPeer({ label: 'connect b', signal: signal.url, topic, store: join(run, 'b.ndjson'), extra });
    peers.push(b);
    const joined = await b.ready();
    const connected = await b.connected(30_000);
    return { connectMs: connected.t - joined._t, startupMs: joined._t - b.proc.startedAt };
  } finally {
    await Promise.all(peers.map((p) => p.stop()));
  }
}

export function renderConnect(s) {
  const lines = [
    'Two fresh peers on empty stores; the second is timed from `joined` to `peer-connected` (signaling, WebRTC,',
    'with a secret also the sealed signaling and the trust handshake, then the replication token handshake). The',
    'two modes alternate run by run (and which goes first). Connect times are bimodal: **stalled** counts runs over',
    `${STALL_MS} ms (the DTLS retransmit), and **p50 fast** is the median of the others. **start-up** is spawn →`,
    '`joined` (with a secret it includes the scrypt key derivation).',
    '',
    '| mode | p50 ms | p90 ms | p50 fast ms | stalled | start-up ms | runs ok |',
    '|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of s.rows) {
    const err = r.errors?.length ? ` (${r.errors[0].split('\n')[0].slice(0, 160)})` : '';
    lines.push(
      `| ${r.mode === 'secret' ? 'with --secret-file' : 'no secret'} | ${ms(r.p50)} | ${ms(r.p90)} | ${ms(r.fastP50)} | ${r.stalled}/${r.ok} | ${ms(r.startup)} | ${r.ok}/${r.runs}${err} |`,
    );
  }
  const [plain, secret] = s.rows;
  if (plain?.fastP50 && secret?.fastP50) {
    lines.push(
      '',
      `Cost of the secret: ${ms(secret.fastP50 - plain.fastP50)} ms on the p50 of runs without a DTLS stall (${(secret.fastP50 / plain.fastP50).toFixed(2)}x),`,
      `${ms(secret.startup - plain.startup)} ms more start-up. The p50 over all runs (${ms(plain.p50)} vs ${ms(secret.p50)} ms) mostly shows how many runs hit`,
      'the 1 s DTLS retransmit, which the handshake runs after and does not cause; compare the fast-run medians.',
    );
  }
  return lines.join('\n');
}

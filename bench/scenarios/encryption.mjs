// Encryption at rest (issue 14): the initial sync of N documents, p2psync → p2psync (NDJSON, the fresh side pulls),
// with one field of every document (`title`) encrypted on both sides, each side with its own key, against the same
// sync without encryption. Plain and encrypted runs alternate, so both see the same load on a shared machine.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeDocs } from '../lib/docs.mjs';
import { int, mb, secs } from '../lib/format.mjs';
import { cliHas, P2pPeer, startSignal, tokenPair, topicName } from '../lib/peers.mjs';
import { attempt } from '../lib/repeat.mjs';
import { countDocs, seedStore } from '../lib/sides.mjs';
import { median, round } from '../lib/stats.mjs';

/** The issue asks for 100k documents; smaller sizes from --sizes are measured too, larger ones are not. */
const MAX_N = 100_000;
const FIELD = 'title';

/** Seeds an encrypted store through the library, as `p2psync put --encrypt-fields` would (the file must start empty). */
async function seedEncrypted(path, n, keyFile, token) {
  const { StoreEncryption } = await import('../../dist/crypt/store-encryption.js');
  const options = { path, format: 'ndjson', storageToken: token, watch: false };
  const enc = await StoreEncryption.prepare(options, { fields: [FIELD], key: { file: keyFile } });
  const store = await enc.open(options);
  const docs = makeDocs('seed', n);
  for (let i = 0; i < n; i += 10_000) {
    await store.bulkWrite(
      docs.slice(i, i + 10_000).map((d) => ({ document: { ...d, _deleted: false }, expected: null })),
      { kind: 'local' },
    );
  }
  await store.close();
}

async function once(ctx, n, encrypted, signal) {
  const dir = mkdtempSync(join(ctx.tmp, `crypt-${encrypted ? 'on' : 'off'}-`));
  const [seededToken, freshToken] = tokenPair(true);
  const topic = topicName('crypt');
  const keys = [join(dir, 'seeded.key'), join(dir, 'fresh.key')];
  writeFileSync(keys[0], 'bench key of the seeded peer\n');
  writeFileSync(keys[1], 'bench key of the fresh peer\n');
  const seededPath = join(dir, 'seeded.ndjson');
  const freshPath = join(dir, 'fresh.ndjson');
  const procs = [];
  try {
    if (encrypted) await seedEncrypted(seededPath, n, keys[0], seededToken);
    else await seedStore(seededPath, 'ndjson', 'seed', n, seededToken);
    const common = { signal: signal.url, topic, profileDir: ctx.profileDir };
    const seeded = new P2pPeer({
      ...common,
      label: `p2psync seeded ${encrypted ? 'encrypted' : 'plain'} ${n}`,
      store: seededPath,
      token: seededToken,
      extra: encrypted ? ['--key-file', keys[0]] : [],
    });
    procs.push(seeded);
    await seeded.ready(120_000);
    const fresh = new P2pPeer({
      ...common,
      label: `p2psync fresh ${encrypted ? 'encrypted' : 'plain'} ${n}`,
      store: freshPath,
      token: freshToken,
      extra: encrypted ? ['--encrypt-fields', FIELD, '--key-file', keys[1]] : [],
    });
    procs.push(fresh);
    const reachedAt = await fresh.reached(n, 60_000 + n * 2);
    const [cs, cf] = await Promise.all([seeded.connected(5_000), fresh.connected(5_000)]);
    const result = { transferMs: reachedAt - Math.min(cs.t, cf.t), wallMs: reachedAt - fresh.proc.startedAt };
    await Promise.all(procs.map((p) => p.stop()));
    result.rss = { seeded: seeded.peakRss, fresh: fresh.peakRss };
    const first = JSON.parse(readFileSync(freshPath, 'utf8').split('\n', 1)[0]);
    result.verified =
      countDocs(freshPath) >= n &&
      (encrypted ? String(first[FIELD]).startsWith('p2psync:v1:') : first[FIELD].startsWith('Document number'));
    return result;
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runEncryption(ctx) {
  if (!ctx.avail.join || !cliHas('join', ['--encrypt-fields', '--key-file']))
    return { skipped: 'not available yet (`p2psync join --encrypt-fields` is not built)' };
  const signal = await startSignal('p2psync');
  const rows = [];
  try {
    for (const n of ctx.sizes.filter((s) => s <= MAX_N)) {
      const runs = { plain: [], encrypted: [] };
      for (let r = 0; r < ctx.runs; r++) {
        for (const encrypted of [false, true]) {
          ctx.log(`encryption n=${n} ${encrypted ? 'encrypted' : 'plain'} run ${r + 1}/${ctx.runs}`);
          runs[encrypted ? 'encrypted' : 'plain'].push(await attempt(() => once(ctx, n, encrypted, signal)));
        }
      }
      rows.push(summarise(n, runs));
    }
  } finally {
    await signal.proc.stop();
  }
  return { field: FIELD, rows };
}

function summarise(n, runs) {
  const med = (list, f) => median(list.filter((r) => !r.error).map(f));
  const side = (list) => ({
    transferMs: med(list, (r) => r.transferMs),
    wallMs: med(list, (r) => r.wallMs),
    rssSeeded: med(list, (r) => r.rss?.seeded),
    rssFresh: med(list, (r) => r.rss?.fresh),
    ok: list.filter((r) => !r.error).length,
    verified: list.filter((r) => !r.error).every((r) => r.verified),
    errors: list.filter((r) => r.error).map((r) => r.error),
  });
  const plain = side(runs.plain);
  const encrypted = side(runs.encrypted);
  // Ratio of the medians, and the median of the per-pair ratios (run r plain vs run r encrypted, side by side).
  const pairs = runs.plain.map((p, i) => [p, runs.encrypted[i]]).filter(([p, e]) => p && e && !p.error && !e.error);
  return {
    n,
    runs,
    plain,
    encrypted,
    ratio: round(encrypted.transferMs / plain.transferMs, 2),
    pairedRatio: round(median(pairs.map(([p, e]) => e.transferMs / p.transferMs)), 2),
  };
}

/** Markdown for the encryption section. */
export function renderEncryption(s) {
  const out = [];
  out.push(
    `One field (\`${s.field}\`) of every document encrypted at rest on both sides, each with its own key, against no`,
  );
  out.push('encryption: p2psync → p2psync, NDJSON, the fresh side pulls (fork). Plain and encrypted runs alternate.');
  out.push(
    '**slowdown** = encrypted transfer time / plain transfer time (ratio of the medians; in brackets the median of',
  );
  out.push('the ratios of runs taken one right after the other).');
  out.push('');
  out.push(
    '| docs | plain transfer s | plain docs/s | encrypted transfer s | encrypted docs/s | slowdown | RSS fresh MB plain / encrypted | runs ok |',
  );
  out.push('|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of s.rows) {
    const rate = (side) => (side.transferMs ? int(r.n / (side.transferMs / 1000)) : '');
    const bad = !r.plain.verified || !r.encrypted.verified ? ' (NOT VERIFIED)' : '';
    out.push(
      `| ${int(r.n)} | ${secs(r.plain.transferMs)} | ${rate(r.plain)} | ${secs(r.encrypted.transferMs)} | ${rate(r.encrypted)} | ` +
        `${r.ratio ?? ''}× (${r.pairedRatio ?? ''}×)${bad} | ${mb(r.plain.rssFresh)} / ${mb(r.encrypted.rssFresh)} | ${r.plain.ok} / ${r.encrypted.ok} |`,
    );
    for (const e of [...r.plain.errors, ...r.encrypted.errors].slice(0, 2))
      out.push(`|  | error: ${e.slice(0, 200).replace(/\|/g, '/')} | | | | | | |`);
  }
  return out.join('\n');
}

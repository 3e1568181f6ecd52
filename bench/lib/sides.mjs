// Starting one side of a replicating pair, whatever its kind, with or without seeded documents.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeDocsFile } from './docs.mjs';
import { RxdbPeer, P2pPeer } from './peers.mjs';

/**
 * Writes `count` documents into a new store file and ingests it once, as a first `p2psync join` would, with the
 * build in `root` (default this checkout: a sidecar is only read by the build that wrote it).
 */
export async function seedStore(path, format, prefix, count, storageToken, root) {
  await writeDocsFile(path, format, prefix, count);
  const open = root ? pathToFileURL(join(root, 'dist/store/open.js')).href : '../../dist/store/open.js';
  const { openStore } = await import(open);
  const s = await openStore({ path, format, storageToken, watch: false });
  await s.close();
}

/**
 * Starts one side. `side`: {kind: 'rxdb', batch} or {kind: 'p2psync', format, batch, root?} (`root`: another
 * build of p2psync, see bench/durability.mjs). `o`: {dir, name, token, topic, signal, seed?, prefix?, expect?,
 * changes?, store?, tag?, wrap?} (`tag` ends up in labels and profile names; `wrap`: see Proc). A p2psync side's
 * store file is `o.store` or `<dir>/<name>.<format>`; with `seed` it is written and ingested before the peer starts.
 */
export async function startSide(ctx, side, o) {
  if (side.kind === 'rxdb') {
    return new RxdbPeer({
      label: `rxdb ${o.name}`,
      signal: o.signal.url,
      topic: o.topic,
      seed: o.seed,
      prefix: o.prefix,
      batch: side.batch,
      token: o.token,
      expect: o.expect,
      changes: o.changes,
    });
  }
  const store = o.store ?? join(o.dir, `${o.name}.${side.format}`);
  if (o.seed) await seedStore(store, side.format, o.prefix ?? 'doc', o.seed, o.token, side.root);
  return new P2pPeer({
    label: `p2psync ${side.format} ${o.name}${o.tag ? ` ${o.tag}` : ''}`,
    signal: o.signal.url,
    topic: o.topic,
    store,
    token: o.token,
    batch: side.batch,
    root: side.root,
    wrap: o.wrap,
    profileDir: ctx.profileDir,
  });
}

/** Documents in a store file (read after the process stopped): NDJSON lines, or the array length for JSON. */
export function countDocs(path) {
  const text = readFileSync(path, 'utf8');
  if (path.endsWith('.json')) {
    const v = JSON.parse(text);
    return Array.isArray(v) ? v.length : -1;
  }
  let n = 0;
  for (const line of text.split('\n')) if (line.trim()) n++;
  return n;
}

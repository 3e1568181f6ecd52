// The benchmark documents: the same shape and size (about 200 bytes of JSON) as the RxDB peer fixture seeds
// (test/fixtures/rxdb-peer.mjs), so every row of every table moves the same bytes.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

/** Document number `i` (1-based) with id `${prefix}-0000000i`. */
export function makeDoc(prefix, i, now = 1_700_000_000_000) {
  const id = `${prefix}-${String(i).padStart(8, '0')}`;
  const title = `Document number ${i}`;
  const base = JSON.stringify({ id, title, n: i, updatedAt: now, body: '' }).length;
  return { id, title, n: i, updatedAt: now, body: 'x'.repeat(Math.max(0, 200 - base)) };
}

/** `count` documents, numbered from 1. */
export function makeDocs(prefix, count, now) {
  const docs = new Array(count);
  for (let i = 1; i <= count; i++) docs[i - 1] = makeDoc(prefix, i, now);
  return docs;
}

/**
 * Writes `count` documents as a user would have them: a top-level JSON array (`json`) or one document per line
 * (`ndjson`). Streams, so a 1M-document file does not need one giant string.
 */
export async function writeDocsFile(path, format, prefix, count) {
  const out = createWriteStream(path);
  const write = async (s) => {
    if (!out.write(s)) await once(out, 'drain');
  };
  if (format === 'json') await write('[\n');
  for (let i = 1; i <= count; i++) {
    const line = JSON.stringify(makeDoc(prefix, i));
    if (format === 'json') await write(i < count ? `${line},\n` : `${line}\n`);
    else await write(`${line}\n`);
  }
  if (format === 'json') await write(']\n');
  out.end();
  await once(out, 'finish');
}

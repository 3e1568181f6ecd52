import { open, readFile, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { KeptVersion } from '../core/conflicts.js';
import { P2PSyncError } from '../core/errors.js';
import { fsyncDir, ioError, writeFileAtomic } from '../store/fs-util.js';
import { FileLock } from '../store/lock.js';
import { sidecarPath } from '../store/sidecar.js';
import { KeptIndex, checkKeepLimit, plainCodec, sortedById, type KeptCodec, type KeptVersionStore } from './kept.js';

/**
 * Kept versions on disk: `<sidecar>.conflicts`, an append-only NDJSON journal beside the sidecar.
 *
 *   line 1     {"p2psync":"conflicts","v":1}
 *   add        {"t":"k","id":ID,"vid":VID,"v":ENCODED}      ENCODED: the version through the KeptCodec
 *   clear      {"t":"c","id":ID,"vids":[VID,...]}           `conflicts resolve`, or the oldest over the limit
 *
 * It is a journal of its own, not records in the sidecar, because `p2psync conflicts resolve` must clear versions
 * while a `join` owns the sidecar: every writer (the running join, the command) appends whole lines under the
 * journal's short lock, so no one's line is lost; readers need no lock (a torn last line is ignored). Once most of
 * its lines are superseded it is rewritten (under the lock, from the file as it is then), so it stays small.
 */

export const KEPT_SUFFIX = '.conflicts';
const HEADER = JSON.stringify({ p2psync: 'conflicts', v: 1 });
/** Rewrite once over this size and mostly superseded lines. */
const COMPACT_MIN_BYTES = 256 * 1024;

interface AddLine {
  t: 'k';
  id: string;
  vid: string;
  v: unknown;
}
interface ClearLine {
  t: 'c';
  id: string;
  vids: string[];
}

/** The kept-versions journal of a store file (one per sidecar, so per collection). */
export function keptPath(userPath: string, collection?: string): string {
  return sidecarPath(userPath, collection) + KEPT_SUFFIX;
}

interface Replayed {
  /** Live adds per id, oldest first, with their journal line. */
  index: KeptIndex<{ vid: string; line: string; v: unknown }>;
  lines: number;
  bytes: number;
}

/** Replays the journal; empty if there is none. Throws E_SIDECAR for damage other than a torn last line. */
async function replay(path: string): Promise<Replayed> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { index: new KeptIndex(Infinity), lines: 0, bytes: 0 };
    throw ioError(err, path, 'read');
  }
  const damaged = (n: number, why: string): P2PSyncError =>
    new P2PSyncError('E_SIDECAR', `${path}:${n}: the kept-versions journal is damaged (${why})`, {
      file: path,
      line: n,
    });
  const lines = text.split('\n');
  if (lines[0] !== HEADER) throw damaged(1, 'not a p2psync conflicts journal');
  const index = new KeptIndex<{ vid: string; line: string; v: unknown }>(Infinity);
  // The last element is '' after a final newline, or a line torn by a crash mid-append, which never counted.
  const last = lines.length - 1;
  let count = 0;
  for (let i = 1; i < last; i++) {
    const line = lines[i]!;
    let rec: AddLine | ClearLine;
    try {
      rec = JSON.parse(line) as AddLine | ClearLine;
    } catch {
      throw damaged(i + 1, 'unreadable line');
    }
    if (rec?.t === 'k' && typeof rec.id === 'string' && typeof rec.vid === 'string')
      index.add(rec.id, { vid: rec.vid, line, v: rec.v });
    else if (rec?.t === 'c' && typeof rec.id === 'string' && Array.isArray(rec.vids)) index.remove(rec.id, rec.vids);
    else throw damaged(i + 1, 'unknown record');
    count++;
  }
  return { index, lines: count, bytes: Buffer.byteLength(text) };
}

export interface FileKeptOptions {
  /** Versions kept per document (`--keep-conflicts`); the oldest beyond it are dropped. */
  limit: number;
  codec?: KeptCodec;
  /** How long to wait for another process's journal lock (default 10 s). */
  lockTimeoutMs?: number;
}

export class FileKeptVersions implements KeptVersionStore {
  /** Live vids per id as this process knows them (others only ever remove: clears are a prefix of each list). */
  private readonly index: KeptIndex<{ vid: string }>;
  private readonly codec: KeptCodec;
  private readonly lock: FileLock;
  private readonly lockTimeoutMs: number;
  private lines = 0;
  private bytes = 0;
  private queue: string[] = [];
  private waiters: Array<{ resolve(): void; reject(err: unknown): void }> = [];
  private writing: Promise<void> | undefined;

  private constructor(
    readonly path: string,
    limit: number,
    options: FileKeptOptions,
  ) {
    this.index = new KeptIndex(limit);
    this.codec = options.codec ?? plainCodec;
    this.lock = new FileLock(path + '.lock', 'kept conflict versions');
    this.lockTimeoutMs = options.lockTimeoutMs ?? 10_000;
  }

  /** Opens the journal at `path` (created on the first write); compacts it if most of it is superseded. */
  static async open(path: string, options: FileKeptOptions): Promise<FileKeptVersions> {
    const kept = new FileKeptVersions(path, checkKeepLimit(options.limit), options);
    const r = await replay(path);
    for (const [id, list] of r.index.byId) for (const x of list) kept.index.add(id, { vid: x.vid });
    kept.lines = r.lines;
    kept.bytes = r.bytes;
    await kept.maybeCompact();
    return kept;
  }

  /** Appends the versions (and the drop of the oldest beyond the limit) durably; concurrent calls share one write. */
  keep(versions: readonly KeptVersion[]): Promise<void> {
    for (const v of versions) {
      this.queue.push(JSON.stringify({ t: 'k', id: v.id, vid: v.vid, v: this.codec.encode(v) } satisfies AddLine));
      const dropped = this.index.add(v.id, { vid: v.vid });
      if (dropped.length > 0) this.queue.push(JSON.stringify({ t: 'c', id: v.id, vids: dropped } satisfies ClearLine));
    }
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.kick();
    });
  }

  async list(): Promise<Map<string, KeptVersion[]>> {
    const r = await replay(this.path);
    const out = new Map<string, KeptVersion[]>();
    for (const [id, list] of r.index.byId) {
      out.set(
        id,
        list.map((x) => {
          try {
            return this.codec.decode(x.v);
          } catch (err) {
            throw new P2PSyncError(
              'E_SIDECAR',
              `${this.path}: kept version ${x.vid} of "${id}" cannot be read: ${(err as Error).message}`,
              { file: this.path, id },
            );
          }
        }),
      );
    }
    return sortedById(out);
  }

  async clear(id: string, vids: readonly string[]): Promise<void> {
    if (vids.length === 0) return;
    this.index.remove(id, vids);
    await this.append([JSON.stringify({ t: 'c', id, vids: [...vids] } satisfies ClearLine)]);
  }

  async close(): Promise<void> {
    while (this.writing) await this.writing.catch(() => undefined);
  }

  private kick(): void {
    if (this.writing || this.queue.length === 0) return;
    const lines = this.queue;
    const waiters = this.waiters;
    this.queue = [];
    this.waiters = [];
    this.writing = this.append(lines).then(
      () => waiters.forEach((w) => w.resolve()),
      (err: unknown) => waiters.forEach((w) => w.reject(err)),
    );
    void this.writing.finally(() => {
      this.writing = undefined;
      this.kick();
    });
  }

  /** Appends whole lines under the journal lock and fsyncs them; creates the journal with its header if missing. */
  private async append(lines: string[]): Promise<void> {
    await this.lock.acquire(this.lockTimeoutMs);
    try {
      let handle;
      try {
        handle = await open(this.path, 'a+');
        const size = (await handle.stat()).size;
        const created = size === 0;
        if (!created && (await lastByte(handle, size)) !== 0x0a) {
          // A line torn by a crash: cut it off, or the next line would be glued to it.
          const text = await handle.readFile('utf8');
          await handle.truncate(Buffer.byteLength(text.slice(0, text.lastIndexOf('\n') + 1)));
        }
        const text = (created ? HEADER + '\n' : '') + lines.join('\n') + '\n';
        await handle.writeFile(text);
        await handle.datasync();
        this.bytes += Buffer.byteLength(text);
        this.lines += lines.length;
        if (created) await fsyncDir(dirname(this.path));
      } catch (err) {
        throw ioError(err, this.path, 'append to');
      } finally {
        await handle?.close().catch(() => undefined);
      }
      await this.maybeCompact(true);
    } finally {
      await this.lock.release();
    }
  }

  /** Rewrites the journal with its live adds only, once most of it is superseded. */
  private async maybeCompact(locked = false): Promise<void> {
    if (this.bytes < COMPACT_MIN_BYTES || this.lines <= 2 * this.index.size) return;
    if (!locked) await this.lock.acquire(this.lockTimeoutMs);
    try {
      const r = await replay(this.path);
      const live: string[] = [];
      for (const list of r.index.byId.values()) for (const x of list) live.push(x.line);
      const text = HEADER + '\n' + live.map((l) => l + '\n').join('');
      await writeFileAtomic(this.path, text);
      this.lines = live.length;
      this.bytes = Buffer.byteLength(text);
      // Re-learn what others cleared, so the limit counts what is really there.
      for (const [id, list] of this.index.byId) {
        const there = new Set((r.index.byId.get(id) ?? []).map((x) => x.vid));
        this.index.remove(
          id,
          list.filter((x) => !there.has(x.vid)).map((x) => x.vid),
        );
      }
    } finally {
      if (!locked) await this.lock.release();
    }
  }
}

async function lastByte(handle: FileHandle, size: number): Promise<number> {
  const buf = Buffer.alloc(1);
  await handle.read(buf, 0, 1, size - 1);
  return buf[0]!;
}

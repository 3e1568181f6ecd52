import { createHash, type Hash } from 'node:crypto';
import { lstat, open, readdir, realpath, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { basename, dirname, join } from 'node:path';
import { P2PSyncError } from '../core/errors.js';
import { ChunkWriter, type ByteBuffer } from './bytes.js';
import { decodeUtf8 } from './utf8.js';

/**
 * What identifies one version of a file without reading it. `ino` changes on every replace-by-rename, `mtimeMs`
 * and `size` on in-place writes. ctime is left out on purpose: renaming our own temp file onto the user's file
 * bumps it, and we take the fingerprint from the temp file before that rename.
 */
export interface Fingerprint {
  ino: number;
  size: number;
  mtimeMs: number;
}

/** A fingerprint plus the content hash, which decides whether a changed fingerprint is a real change. */
export interface FileVersion extends Fingerprint {
  hash: string;
}

export function fingerprintOf(s: Stats): Fingerprint {
  return { ino: s.ino, size: s.size, mtimeMs: s.mtimeMs };
}

export function sameFingerprint(a: Fingerprint | undefined, b: Fingerprint | undefined): boolean {
  return !!a && !!b && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;
}

/** Content hash for change detection only (not security): sha1 is the fastest digest Node ships. */
export function contentHash(data: string | Buffer): string {
  return createHash('sha1').update(data).digest('hex');
}

/** `stat` that returns undefined for a missing file and turns other failures into E_IO. */
export async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioError(err, path, 'stat');
  }
}

export function ioError(err: unknown, file: string, action: string): P2PSyncError {
  const code = (err as NodeJS.ErrnoException).code;
  return new P2PSyncError(
    'E_IO',
    `cannot ${action} ${file}: ${(err as Error).message}`,
    { file, errno: code },
    { cause: err },
  );
}

/**
 * The file that reading and writing `path` really touches. A symlink is followed, so a store that is a symlink is
 * written through to its target (the temp file goes beside the target and is renamed over it; the link stays). A
 * target that exists but is not a regular file (a device such as /dev/null, a FIFO, a directory), or a symlink to
 * nothing, is refused with E_BAD_OPTION: the `--store` value cannot name a store, whatever is in it.
 */
export async function storeTarget(path: string): Promise<string> {
  let real: string;
  let s: Stats;
  try {
    real = await realpath(path);
    s = await stat(real);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(err, path, 'stat');
    const link = await lstat(path).catch(() => undefined);
    if (link?.isSymbolicLink())
      throw new P2PSyncError(
        'E_BAD_OPTION',
        `${path} is a symlink to a file that does not exist; create the target or point the link at a file`,
        { file: path },
      );
    return path;
  }
  if (!s.isFile()) {
    const kind = s.isDirectory()
      ? 'a directory'
      : s.isFIFO()
        ? 'a FIFO'
        : s.isCharacterDevice() || s.isBlockDevice()
          ? 'a device'
          : s.isSocket()
            ? 'a socket'
            : 'not a regular file';
    const via = real !== path ? ` (through a symlink to ${real})` : '';
    throw new P2PSyncError('E_BAD_OPTION', `${path} is ${kind}${via}: a store must be a regular file`, {
      file: path,
      target: real,
    });
  }
  return real;
}

/** Name of our temp file for `target`: hidden, per process (never collides with lowdb's `.<name>.tmp`). */
export function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.p2psync-tmp`);
}

/** fsync a directory so that a rename inside it survives a power loss. Not supported everywhere: best effort. */
export async function fsyncDir(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Some platforms and file systems refuse to open or fsync a directory; the rename is still atomic there.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/**
 * Replaces `target` atomically and durably: write a temp file beside it, fsync it, rename it over the target,
 * fsync the directory. Readers see the old or the new file, never a mix; a crash leaves one of the two.
 * Returns the new file's version (fingerprint taken from the temp file before the rename).
 */
export async function writeFileAtomic(path: string, data: string | Buffer, hash?: string): Promise<FileVersion> {
  const target = await storeTarget(path);
  const tmp = tempPathFor(target);
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let fp: Fingerprint;
  try {
    const handle = await open(tmp, 'w', 0o666);
    try {
      await handle.writeFile(buf);
      await handle.sync();
      fp = fingerprintOf(await handle.stat());
    } finally {
      await handle.close();
    }
    await rename(tmp, target);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw ioError(err, path, 'write');
  }
  await fsyncDir(dirname(target));
  return { ...fp, hash: hash ?? contentHash(buf) };
}

/**
 * `writeFileAtomic` with the content streamed by `fill` through a ChunkWriter over `out` (and hashed on the way).
 * With `keepOpen` the temp file's handle stays open (readable) and is returned: it keeps naming the written content
 * even after the file is renamed or replaced, which lets the next rewrite copy from it. `resume` is the SHA-1 state
 * of the first `upTo` bytes `fill` will write (they are not hashed again). With `syncDir` false the directory is not
 * fsynced: the caller does it (`fsyncDir`) before anything relies on the rename surviving a power cut.
 */
export async function writeFileAtomicWith(
  path: string,
  out: ByteBuffer,
  fill: (w: ChunkWriter) => Promise<void>,
  keepOpen = false,
  resume?: { hash: Hash; upTo: number },
  syncDir = true,
): Promise<{ version: FileVersion; handle: FileHandle | undefined }> {
  const target = await storeTarget(path);
  const tmp = tempPathFor(target);
  const hash = resume?.hash ?? createHash('sha1');
  let handle: FileHandle | undefined;
  let fp: Fingerprint;
  try {
    handle = await open(tmp, keepOpen ? 'w+' : 'w', 0o666);
    const w = new ChunkWriter(handle, out, hash, resume?.upTo ?? 0, tmp);
    await fill(w);
    await w.finish();
    await handle.sync();
    fp = fingerprintOf(await handle.stat());
    if (!keepOpen) {
      const h = handle;
      handle = undefined;
      await h.close();
    }
    await rename(tmp, target);
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw ioError(err, path, 'write');
  }
  if (syncDir) await fsyncDir(dirname(target));
  return { version: { ...fp, hash: hash.digest('hex') }, handle };
}

/** A file's text and the version it was read at; see `readVersioned`. */
export interface VersionedText {
  /** Decoded on first use (a caller that only needs `appended` spares decoding a big file). */
  readonly text: string;
  /** The bytes read, until `text` is decoded (they are let go then). */
  readonly bytes: Buffer | undefined;
  readonly version: FileVersion;
  /**
   * Set when the file is the version `since` with text appended after a line break (or to an empty file): the
   * appended text alone.
   */
  readonly appended?: string;
}

/**
 * Reads a file as UTF-8 plus its version (`text` throws E_PARSE at the first byte that is not UTF-8); undefined if it does not exist. Retries if it changes while read.
 * With `since`, also tells whether the file only grew past that version (one hashing pass decides both).
 */
export async function readVersioned(path: string, since?: FileVersion): Promise<VersionedText | undefined> {
  // Checked before opening: opening a FIFO for reading would wait for a writer forever.
  const target = await storeTarget(path);
  for (let attempt = 0; ; attempt++) {
    let handle;
    try {
      handle = await open(target, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw ioError(err, path, 'open');
    }
    try {
      const before = fingerprintOf(await handle.stat());
      const buf = await readAll(handle, before.size);
      const after = fingerprintOf(await handle.stat());
      // An in-place writer was busy: read again rather than parse a half-written file.
      if ((!sameFingerprint(before, after) || buf.length !== after.size) && attempt < 5) continue;
      return versionedText(path, buf, after, since);
    } catch (err) {
      throw ioError(err, path, 'read');
    } finally {
      await handle.close().catch(() => undefined);
    }
  }
}

function versionedText(path: string, buf: Buffer, fp: Fingerprint, since: FileVersion | undefined): VersionedText {
  const hash = createHash('sha1');
  let appended: string | undefined;
  const cut = since?.size ?? 0;
  if (since && buf.length > cut && (cut === 0 || buf[cut - 1] === 0x0a)) {
    hash.update(buf.subarray(0, cut));
    // Appended bytes that are not UTF-8 are left to the whole-file read, which reports where they are.
    const tail = buf.subarray(cut);
    if (hash.copy().digest('hex') === since.hash && isUtf8(tail)) appended = tail.toString('utf8');
    hash.update(buf.subarray(cut));
  } else hash.update(buf);
  let text: string | undefined;
  // Once decoded, the bytes are let go: a big file would otherwise be held twice while it is parsed.
  let bytes: Buffer | undefined = buf;
  return {
    get text() {
      if (text === undefined) {
        text = decodeUtf8(bytes!, path);
        bytes = undefined;
      }
      return text;
    },
    get bytes() {
      return bytes;
    },
    version: { ...fp, hash: hash.digest('hex') },
    ...(appended !== undefined ? { appended } : {}),
  };
}

/**
 * The complete lines a file holds past byte `from` (up to its last line break), if the file is still inode `ino`,
 * grew past `from`, and byte `from - 1` ends a line (or `from` is 0); else undefined. Reads only those bytes: it
 * proves nothing about the bytes before `from` (`readVersioned` does).
 */
export async function readLinesAfter(path: string, from: number, ino: number): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(await storeTarget(path), 'r');
    const s = await handle.stat();
    if (s.ino !== ino || s.size <= from) return undefined;
    const start = from > 0 ? from - 1 : 0;
    const buf = Buffer.allocUnsafe(s.size - start);
    const { bytesRead } = await handle.read(buf, 0, buf.length, start);
    if (from > 0 && buf[0] !== 0x0a) return undefined;
    const body = buf.subarray(from > 0 ? 1 : 0, bytesRead);
    const lines = body.subarray(0, body.lastIndexOf(0x0a) + 1);
    return lines.length > 0 && isUtf8(lines) ? lines.toString('utf8') : undefined;
  } catch {
    return undefined;
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/** Reads `size` bytes (the size at open) in as few calls as possible; less if the file shrank meanwhile. */
async function readAll(handle: FileHandle, size: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(size);
  let got = 0;
  while (got < size) {
    const { bytesRead } = await handle.read(buf, got, size - got, got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === size ? buf : buf.subarray(0, got);
}

/** Removes temp files that crashed writers left next to the file (their pid is gone). `isAlive` is injected to keep this module free of lock logic. */
export async function removeDeadTemps(store: string, isAlive: (pid: number) => boolean): Promise<void> {
  // Temp files sit beside the file written, the target of a symlink (a path that cannot be a store is refused later).
  const path = await storeTarget(store).catch(() => store);
  const dir = dirname(path);
  const prefix = `.${basename(path)}.`;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith('.p2psync-tmp')) continue;
    const pid = Number(/\.(\d+)\.p2psync-tmp$/.exec(name)?.[1]);
    if (Number.isInteger(pid) && pid !== process.pid && !isAlive(pid))
      await unlink(join(dir, name)).catch(() => undefined);
  }
}

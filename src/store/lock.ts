import { open, readFile, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { P2PSyncError } from '../core/errors.js';
import { randomToken } from '../core/random.js';
import { ioError } from './fs-util.js';

/** Who holds a lock, as written into the lock file. */
export interface LockHolder {
  pid: number;
  host: string;
  purpose: string;
  /** ms since epoch when it was taken. */
  time: number;
}

interface LockRecord extends LockHolder {
  token: string;
}

/**
 * A lock file created with O_EXCL, holding the owner's pid. A lock whose process is gone (same host, pid no
 * longer alive) is stale and gets broken; a lock from another host is never broken automatically. A lock file
 * that is still empty (its creator has not written it yet) counts as held for `EMPTY_GRACE_MS`.
 */
export class FileLock {
  private token: string | undefined;

  constructor(
    readonly path: string,
    private readonly purpose: string,
  ) {}

  get held(): boolean {
    return this.token !== undefined;
  }

  /** Takes the lock if it is free (or stale); otherwise returns who holds it. */
  async tryAcquire(): Promise<LockHolder | undefined> {
    // Not re-entrant: two holders in one process would release each other's lock.
    if (this.token) throw new P2PSyncError('E_INTERNAL', `lock ${this.path} is already held by this instance`);
    for (let attempt = 0; attempt < 5; attempt++) {
      const token = randomToken(12);
      const record: LockRecord = { pid: process.pid, host: hostname(), purpose: this.purpose, time: Date.now(), token };
      try {
        const handle = await open(this.path, 'wx');
        try {
          await handle.writeFile(JSON.stringify(record) + '\n');
        } finally {
          await handle.close();
        }
        this.token = token;
        return undefined;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(err, this.path, 'create the lock file');
      }
      const current = await readRecord(this.path);
      if (current === 'gone') continue;
      if (current === 'unreadable') {
        if (!(await olderThan(this.path, EMPTY_GRACE_MS)))
          return { pid: 0, host: '', purpose: this.purpose, time: Date.now() };
        await breakLock(this.path, undefined);
        continue;
      }
      if (isStale(current.record)) {
        await breakLock(this.path, current.raw);
        continue;
      }
      return {
        pid: current.record.pid,
        host: current.record.host,
        purpose: current.record.purpose,
        time: current.record.time,
      };
    }
    throw new P2PSyncError('E_LOCKED', `cannot take the lock ${this.path}: it keeps changing`, { file: this.path });
  }

  /** Waits (polling with backoff) until the lock is free, up to `timeoutMs`; then fails with E_LOCKED. */
  async acquire(timeoutMs: number): Promise<void> {
    const holder = await this.acquireWithin(timeoutMs, () => true);
    if (holder) {
      throw new P2PSyncError(
        'E_LOCKED',
        `${this.path} is locked by process ${holder.pid} (${holder.purpose}); gave up after ${timeoutMs} ms`,
        {
          file: this.path,
          pid: holder.pid,
        },
      );
    }
  }

  /**
   * Takes the lock, waiting (polling with backoff) up to `timeoutMs` while `worthWaiting(holder)` says its holder
   * lets go soon. Returns the holder when it gave up, undefined once the lock is taken. A dead holder's lock is broken.
   */
  async acquireWithin(
    timeoutMs: number,
    worthWaiting: (holder: LockHolder) => boolean,
  ): Promise<LockHolder | undefined> {
    const deadline = Date.now() + timeoutMs;
    let wait = 2;
    for (;;) {
      const holder = await this.tryAcquire();
      if (!holder) return undefined;
      if (Date.now() >= deadline || !worthWaiting(holder)) return holder;
      await delay(wait);
      wait = Math.min(wait * 2, 50);
    }
  }

  /** Removes the lock file if it is still ours. */
  async release(): Promise<void> {
    const token = this.token;
    if (!token) return;
    this.token = undefined;
    const current = await readRecord(this.path);
    if (typeof current === 'object' && current.record.token === token) await unlink(this.path).catch(() => undefined);
  }
}

/** A lock file whose content is not written yet is held by its creator for this long. */
const EMPTY_GRACE_MS = 5_000;
/** A `.break` file left by a process that died while breaking a stale lock expires after this long. */
const BREAK_GRACE_MS = 10_000;

async function readRecord(path: string): Promise<{ record: LockRecord; raw: string } | 'gone' | 'unreadable'> {
  let raw: string;
  try {
    raw = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw ioError(err, path, 'read the lock file');
  }
  try {
    const record = JSON.parse(raw) as LockRecord;
    if (typeof record.pid !== 'number' || typeof record.token !== 'string') return 'unreadable';
    return { record, raw };
  } catch {
    return 'unreadable';
  }
}

function isStale(r: LockRecord): boolean {
  if (r.host !== hostname()) return false;
  // Another instance in this very process holds it: alive by definition.
  if (r.pid === process.pid) return false;
  return !isAlive(r.pid);
}

/** True if a process with this pid exists (EPERM: it exists but belongs to someone else). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function olderThan(path: string, ms: number): Promise<boolean> {
  try {
    return Date.now() - (await stat(path)).mtimeMs > ms;
  } catch {
    return false;
  }
}

/**
 * Removes a stale lock. Two processes may find the same stale lock; a `.break` file (O_EXCL) lets only one of
 * them remove it, and only if the lock still has the content that was judged stale, so a fresh lock that a third
 * process took in between is never removed.
 */
async function breakLock(path: string, staleRaw: string | undefined): Promise<void> {
  const breaker = path + '.break';
  let handle;
  try {
    handle = await open(breaker, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST' && (await olderThan(breaker, BREAK_GRACE_MS)))
      await unlink(breaker).catch(() => undefined);
    return;
  }
  try {
    await handle.close();
    const now = await readFile(path, 'utf8').catch(() => undefined);
    if (now !== undefined && (staleRaw === undefined ? !isRecord(now) : now === staleRaw))
      await unlink(path).catch(() => undefined);
  } finally {
    await unlink(breaker).catch(() => undefined);
  }
}

function isRecord(raw: string): boolean {
  try {
    const r = JSON.parse(raw) as Partial<LockRecord>;
    return typeof r.pid === 'number' && typeof r.token === 'string';
  } catch {
    return false;
  }
}

/** Who holds the lock at `path` right now, if anyone alive does. */
export async function lockHolder(path: string): Promise<LockHolder | undefined> {
  const current = await readRecord(path);
  if (current === 'gone' || current === 'unreadable') return undefined;
  return isStale(current.record) ? undefined : current.record;
}

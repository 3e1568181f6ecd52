import { debuglog } from 'node:util';
import { P2PSyncError, toP2PSyncError } from '../core/errors.js';
import type { EmitEvent } from '../core/events.js';
import { randomToken } from '../core/random.js';
import type { WriteOrigin } from '../core/types.js';
import type { IndexEntry } from './doc-index.js';
import { EntryStates } from './entry-states.js';
import { removeDeadTemps, sameFingerprint, statOrUndefined, type FileVersion } from './fs-util.js';
import { IndexedStore, type PeerStateChange } from './indexed-store.js';
import { FileLock, isAlive } from './lock.js';
import { Sidecar, sidecarPath, writeLockPath } from './sidecar.js';
import { UserFile, type StoreFormat, type UserContent } from './user-file.js';
import { FileWatcher } from './watcher.js';
import { FileWriter, type FileStoreStats, type WritePlan } from './file-writer.js';
import { WriteAhead } from './write-ahead.js';
import { latest, ownUnrecordedSave } from './recovery.js';
import { OutsideEdits } from './outside-edits.js';

const debug = debuglog('p2psync');

/** Fully resolved settings of a file store (see `FileStoreOptions` in open.ts for what each one means). */
export interface FileStoreConfig {
  path: string;
  format: StoreFormat;
  primaryKey: string;
  collection: string | undefined;
  storageToken: string | undefined;
  watch: boolean;
  fsWatch: boolean;
  pollIntervalMs: number;
  debounceMs: number;
  tombstoneTtlMs: number;
  lockTimeoutMs: number;
  compactMinBytes: number;
  emit: EmitEvent | undefined;
}

const PURGE_EVERY_MS = 3_600_000;
const FLUSH_RETRY_MS = 2_000;
/** Errors of a disk that refuses writes: reported as `error` events, retried while running. */
const DISK_ERRORS = new Set(['ENOSPC', 'EIO', 'EROFS', 'EDQUOT', 'EFBIG']);
/** Purposes written into the owner lock (see `FileStore.open`). */
const LONG_OWNER = 'owner';
const SHORT_OWNER = 'command';

export type { FileStoreStats } from './file-writer.js';

/**
 * A store backed by the user's JSON or NDJSON file plus the sidecar journal. The index in memory is the truth
 * while open; writes reach it (and `changes$`) at once, the journal within one fsync (`WriteAhead`: `durable()`
 * resolves then) and the user's file on a short timer, `flush()` or `close()` (see `FileWriter`).
 *
 * Invariants (docs/STORES.md, "Durability"): the journal records a file save only once the file holds it; write-ahead
 * records newer than the last file save are written into the file on open, not taken for edits; and the writer's
 * `knownDocs()` is the user file's content as p2psync last read or wrote it, so any difference between the file on
 * disk and it is somebody else's edit.
 */
export class FileStore extends IndexedStore {
  readonly path: string;
  readonly format: StoreFormat;
  readonly stats: FileStoreStats = { fileWrites: 0, sidecarAppends: 0, compactions: 0, outsideEdits: 0 };
  protected override readonly compactsEntries = true;
  private readonly file: UserFile;
  private readonly sidecar: Sidecar;
  private readonly ownerLock: FileLock;
  private readonly writeLock: FileLock;
  private readonly writer: FileWriter;
  private readonly wal: WriteAhead;
  /** Reconciliation with edits made to the file by anyone else. */
  private readonly edits: OutsideEdits;
  private watcher: FileWatcher | undefined;
  /** The next timed flush, if one is scheduled. */
  private flushTimer: { cancel(): void } | undefined;
  /** A flush waits for the write in flight to end (see `scheduleFlush`). */
  private flushAfterWrite = false;
  /** Commits to write into the user's file since the last write was planned (see `scheduleFlush`). */
  private commitsUnsaved = 0;
  private flushFailure: string | undefined;
  private lastPurge = 0;
  private released = false;

  private constructor(private readonly config: FileStoreConfig) {
    super(config.primaryKey);
    this.path = config.path;
    this.format = config.format;
    this.file = new UserFile({
      path: config.path,
      format: config.format,
      primaryKey: config.primaryKey,
      ...(config.collection !== undefined ? { collection: config.collection } : {}),
    });
    this.sidecar = new Sidecar(sidecarPath(config.path, config.collection));
    // A watching owner (`join`) holds the store for long; anyone else (a shell command) for a moment.
    this.ownerLock = new FileLock(this.sidecar.path + '.owner', config.watch ? LONG_OWNER : SHORT_OWNER);
    this.writeLock = new FileLock(writeLockPath(config.path), 'write');
    const { index, peerStates, file, sidecar, stats } = this;
    this.wal = new WriteAhead({ index, peerStates, sidecar, onFailure: (err) => this.journalFailed(err) });
    const wal = this.wal;
    this.writer = new FileWriter({
      index,
      peerStates,
      file,
      sidecar,
      wal,
      stats,
      primaryKey: config.primaryKey,
      compactMinBytes: config.compactMinBytes,
    });
    this.edits = new OutsideEdits({
      path: config.path,
      format: config.format,
      file,
      writer: this.writer,
      index,
      stats,
      emit: config.emit,
      commit: (entries, origin) => this.commit(entries, origin),
    });
  }

  get storageToken(): string {
    return this.writer.header.token;
  }

  /** Opens (creating an empty file if missing), reconciles with the sidecar and starts watching. */
  static async open(config: FileStoreConfig): Promise<FileStore> {
    const store = new FileStore(config);
    // Waiting for a shell command's moment is what makes `put` next to a starting `join` safe; waiting for another
    // `join` would only delay the same error.
    const holder = await store.ownerLock.acquireWithin(config.lockTimeoutMs, (h) => h.purpose !== LONG_OWNER);
    if (holder) {
      throw new P2PSyncError(
        'E_LOCKED',
        `${config.path} is already open in process ${holder.pid} (only one p2psync process can own a store)`,
        {
          file: config.path,
          pid: holder.pid,
          owner: true,
        },
      );
    }
    try {
      // Exclusive like every mutation: a flush timer that fires meanwhile waits for the load to finish.
      await store.exclusive(async () => {
        await store.writeLock.acquire(config.lockTimeoutMs);
        try {
          await store.load();
        } finally {
          await store.writeLock.release();
        }
      });
    } catch (err) {
      store.flushTimer?.cancel();
      store.released = true;
      await store.file.close();
      await store.sidecar.close();
      await store.ownerLock.release();
      throw err;
    }
    if (config.watch) {
      store.watcher = new FileWatcher(
        config.path,
        { fsWatch: config.fsWatch, pollIntervalMs: config.pollIntervalMs, debounceMs: config.debounceMs },
        (inPlace) => store.poke(inPlace),
      );
      store.watcher.start();
    }
    return store;
  }

  private async load(): Promise<void> {
    const c = this.config;
    await removeDeadTemps(c.path, isAlive);
    let { content, version } = await this.readContent();
    // The journal's states that equal the file's documents are kept as the file's objects: one copy of every
    // document in memory rather than two while the store opens (docs/STORES.md, "Memory").
    const docs = content?.docs;
    const share = (id: string, entry: IndexEntry): IndexEntry | undefined => {
      const mine = docs instanceof EntryStates ? docs.entryOf(id) : undefined;
      return mine?.sameText(entry) ? mine : undefined;
    };
    const saved = await Sidecar.load(this.sidecar.path, c.primaryKey, content && share);
    if (saved?.dropped) this.reportTornSidecar(saved.dropped);
    const h = saved?.header;
    if (h && (h.key !== c.primaryKey || (h.collection ?? undefined) !== c.collection)) {
      const was = `--key ${h.key}${h.collection !== null ? ` --collection ${h.collection}` : ''}`;
      throw new P2PSyncError(
        'E_SIDECAR',
        `${this.sidecar.path} was made with ${was}; use the same options, or delete the sidecar to start over (peers then re-sync in full)`,
        {
          file: this.sidecar.path,
          key: h.key,
          collection: h.collection,
        },
      );
    }
    if (!content || !version) {
      // A deleted file is recreated from the sidecar, which holds every document's last content: removing the
      // file must not turn into deleting every document on every peer.
      const live = saved ? [...latest(saved).values()].filter((e) => !e.deleted).map((e) => e.doc) : [];
      const text = live.length > 0 ? this.file.serialise(live).toString('utf8') : this.file.emptyText();
      version = await this.file.writeText(text);
      content = this.file.parse(text, true);
    }
    if (content.collectionMissing) {
      c.emit?.({
        event: 'warning',
        code: 'W_NEW_COLLECTION',
        message: `${c.path} has no "${c.collection}" member; it is added (with the other members kept) at the first write`,
        details: { file: c.path, collection: c.collection },
      });
    }
    if (saved) {
      this.writer.header = saved.header;
      // Documents of write-ahead records newer than the last file save go on top: the file is behind them, which
      // is no outside edit (see `Sidecar`); they are written into the file below.
      const unsaved = [...saved.unsaved.values()].filter((e) => (saved.docs.get(e.id)?.lwt ?? -Infinity) < e.lwt);
      // What the file holds by the journal's account, taken before the index takes the journal's map over.
      let known: EntryStates | undefined;
      let before: EntryStates | undefined;
      if (saved.file?.hash === version.hash) {
        // The file is byte for byte what the sidecar last recorded: nothing to diff, only its order to learn.
        // The file's own map becomes `known` (no second map of a million entries), with the journal's entries (the
        // index's) for its documents.
        known = content.docs instanceof EntryStates ? content.docs : new EntryStates();
        for (const id of content.docs.keys()) known.setEntry(id, saved.docs.get(id)!);
      } else {
        // The sidecar knows what the file held at its last save; anything else reached the file afterwards.
        before = new EntryStates();
        for (const e of saved.docs.values()) if (!e.deleted) before.setEntry(e.id, e);
        ownUnrecordedSave(before, content.docs, saved.unsavedStates);
      }
      this.index.loadMap(saved.docs, unsaved);
      this.index.advanceClock(saved.clock);
      this.writer.committed(unsaved, { kind: 'local' }, true);
      if (unsaved.length > 0)
        debug('%s: %d documents from the journal are not in the file yet', c.path, unsaved.length);
      for (const [k, s] of saved.peers) this.adoptPeerState(k, s);
      this.writer.recordedVersion = saved.file;
      if (known) {
        this.writer.adoptFile(known, version);
        this.edits.root = content.root;
      } else {
        const counts = this.edits.ingest(content, version, before!);
        if (counts.created + counts.updated + counts.deleted > 0)
          this.config.emit?.({ event: 'outside-edit', store: c.path, ...counts });
      }
    } else {
      this.writer.header = {
        p2psync: 'sidecar',
        v: 1,
        token: c.storageToken ?? randomToken(10),
        key: c.primaryKey,
        collection: c.collection ?? null,
        created: new Date().toISOString(),
      };
      this.edits.ingest(content, version, new Map());
    }
    this.purgeExpired(Date.now());
    if (!saved || saved.torn) this.writer.requireSnapshot();
    else await this.sidecar.attach(saved.bytes, saved.records);
    this.wal.start(saved?.seq ?? 0);
    await this.writer.execute(await this.writer.plan(this.edits.root));
  }

  /**
   * The user's file parsed, if it exists. Its text (if it was read whole) is dropped on return, before the journal is
   * replayed: for a big store it is as large as the file.
   */
  private async readContent(): Promise<{ content?: UserContent; version?: FileVersion }> {
    return (await this.file.readParsed(true)) ?? {};
  }

  /**
   * A torn last line of the journal (a crash mid-append, or a sidecar cut short) is dropped, with the writes and
   * checkpoints it held: say so. Their documents come back from the peers that sent them (the checkpoint in the
   * same line went too), or are read from the user's file again as outside edits.
   */
  private reportTornSidecar(dropped: { line: number; bytes: number }): void {
    const file = this.sidecar.path;
    this.config.emit?.({
      event: 'warning',
      code: 'W_SIDECAR_TORN',
      message: `${file}:${dropped.line}: dropped an incomplete last record (${dropped.bytes} bytes) of the sidecar, cut short by a crash or a truncated copy; the writes it held are fetched again from peers or read again from your file`,
      details: { file, line: dropped.line, bytes: dropped.bytes, records: 1 },
    });
  }

  // ---- IndexedStore hooks ----

  protected override committed(entries: IndexEntry[], origin: WriteOrigin): void {
    this.wal.committed(entries);
    this.writer.committed(entries, origin, this.index.lastSetReplaced > 0);
    if (origin.kind === 'outside') return;
    this.commitsUnsaved++;
    this.scheduleFlush();
  }

  protected override peerStateChanged(key: string, change: PeerStateChange): void {
    // Only the journal holds peer states: no rewrite of the user's file.
    this.wal.peerChanged(key, change);
  }

  /** The journal has every write made so far fsynced (see `WriteAhead`). */
  override durable(): Promise<void> {
    if (this.closed || this.released) return Promise.resolve();
    return this.wal.durable();
  }

  protected override async beforeRead(): Promise<void> {
    // While a write is in flight the file on disk may be ahead of `knownVersion`; `poke` checks once it is done.
    if (this.watcher?.pending && !this.writer.busy) await this.exclusive(() => this.liveCheck());
  }

  protected override async beforeWrite(): Promise<void> {
    if (this.watcher?.pending && !this.writer.busy) await this.liveCheck();
  }

  /**
   * Writes everything pending. The state to write is captured inside the mutation queue (briefly), the I/O runs
   * outside it: writers (a pull in progress) go on while the file and the sidecar are written and fsynced. Writes
   * are serialised among themselves, so the sidecar's batches stay in order.
   */
  override async flush(): Promise<void> {
    // Waiting here rather than inside the queue keeps writers going meanwhile.
    await this.writer.idle();
    const started = await this.exclusive(() => this.startWrite());
    await started?.done;
    // A save started earlier may still be recording itself.
    await this.writer.recorded();
    // What only the journal records (peer states, outside edits) is durable once the journal is.
    if (!this.released) await this.wal.durable();
  }

  /** Inside the mutation queue: captures what to write and starts the I/O. */
  private async startWrite(): Promise<{ done: Promise<void> } | undefined> {
    // A flush queued meanwhile may have started a write: one at a time.
    await this.writer.idle();
    this.flushTimer?.cancel();
    this.flushTimer = undefined;
    if (this.released) return undefined;
    if (Date.now() - this.lastPurge > Math.min(PURGE_EVERY_MS, this.config.tombstoneTtlMs))
      this.purgeExpired(Date.now());
    if (!this.writer.pending) return undefined;
    await this.writeLock.acquire(this.config.lockTimeoutMs);
    let plan: WritePlan;
    try {
      // Never replace the file over an edit we have not seen: look first, ingest, then write.
      await this.edits.recheck();
      this.commitsUnsaved = 0;
      plan = await this.writer.plan(this.edits.root);
    } catch (err) {
      await this.writeLock.release();
      throw err;
    }
    return { done: this.writer.run(plan, () => this.writeLock.release()) };
  }

  /**
   * Honest shutdown (docs/STORES.md, "Durability"): when the final save fails, the error says how many documents are
   * durable nowhere (`details.unwritten`: the journal could not take them either; they are lost to this replica, and
   * its checkpoints, recorded after them, make replication fetch them again on the next start) and how many are in
   * the journal but not in the user's file (`details.unsaved`: the next start writes them there).
   */
  override async close(): Promise<void> {
    try {
      await super.close();
    } catch (err) {
      throw this.withUnwritten(toP2PSyncError(err, 'E_IO'));
    }
  }

  private withUnwritten(e: P2PSyncError): P2PSyncError {
    const unwritten = this.wal.notDurable();
    const unsaved = this.writer.unsaved;
    if (unwritten === 0 && unsaved === 0) return e;
    const docs = (n: number): string => `${n} document${n === 1 ? '' : 's'}`;
    const what =
      unwritten > 0
        ? `${docs(unwritten)} could not be written to ${this.path}`
        : `${docs(unsaved)} are in the journal but could not be written to ${this.path} (the next start writes them)`;
    return new P2PSyncError(e.code, `${what}: ${e.message}`, { ...e.details, unwritten, unsaved }, { cause: e });
  }

  protected override async release(): Promise<void> {
    this.released = true;
    this.watcher?.stop();
    this.flushTimer?.cancel();
    this.flushTimer = undefined;
    await this.writer.recorded();
    await this.wal.close();
    await this.edits.close();
    await this.file.close();
    await this.sidecar.close();
    await this.ownerLock.release();
  }

  // ---- persistence ----

  /**
   * Leading edge: a change after a quiet spell is written at once (on the next turn of the event loop, so that one
   * burst is one write); rewrites that follow each other are paced by their cost (`FlushPacer`), which bounds the
   * share of time spent rewriting a big file during a sync. A change made while a write is in flight waits for that
   * write to end, then asks the pacer: what it costs decides how long the next one waits. A lone change (one commit
   * since the last write started) asks the pacer's live budget, which allows more.
   */
  private scheduleFlush(): void {
    if (this.flushTimer || this.flushAfterWrite || this.closed || this.released) return;
    if (this.writer.busy) {
      this.flushAfterWrite = true;
      void this.writer.idle().then(() => {
        this.flushAfterWrite = false;
        this.scheduleFlush();
      });
      return;
    }
    // One commit waiting is a live change: waiting would batch it with nothing (see `FlushPacer`).
    const live = this.commitsUnsaved <= 1;
    this.flushIn(this.writer.pacer.delay(performance.now(), live));
  }

  private flushIn(ms: number): void {
    const fire = (): void => {
      this.flushTimer = undefined;
      // A write started meanwhile (an explicit flush): wait for it, as above.
      if (this.writer.busy) return this.scheduleFlush();
      this.flush().then(
        () => (this.flushFailure = undefined),
        (err: unknown) => this.flushFailed(err),
      );
    };
    // No wait: the next turn of the event loop (a timer of 0 ms waits at least 1 ms).
    if (ms > 0) {
      const timer = setTimeout(fire, ms);
      this.flushTimer = { cancel: () => clearTimeout(timer) };
    } else {
      const immediate = setImmediate(fire);
      this.flushTimer = { cancel: () => clearImmediate(immediate) };
    }
  }

  /**
   * A timed flush failed. A broken or missing file was reported already and waits for the file to come back;
   * anything else (disk full, a lock held too long) is reported once and retried every few seconds.
   */
  private flushFailed(err: unknown): void {
    debug('flush of %s failed: %s', this.path, (err as Error).message);
    if (this.edits.problem || this.closed || this.released) return;
    const e = toP2PSyncError(err, 'E_IO');
    // A disk that refuses writes is an error (documents may be in memory only); a lock held too long is a warning.
    const kind = DISK_ERRORS.has(String(e.details.errno)) ? 'error' : 'warning';
    if (this.flushFailure !== e.message) {
      const unwritten = this.wal.notDurable();
      const held = unwritten > 0 ? ` (${unwritten} document${unwritten === 1 ? '' : 's'} in memory only)` : '';
      this.config.emit?.({
        event: kind,
        code: e.code,
        message: `cannot save ${this.path} yet${held}: ${e.message}; retrying`,
        details: { ...e.details, unwritten },
      });
    }
    this.flushFailure = e.message;
    if (!this.flushTimer) this.flushIn(FLUSH_RETRY_MS);
  }

  /**
   * An append to the journal failed (disk full, I/O error, read-only): the writes stay in memory, the journal is
   * replaced by a snapshot on the next successful save, which is retried every few seconds.
   */
  private journalFailed(err: P2PSyncError): void {
    this.writer.requireSnapshot();
    this.flushFailed(err);
  }

  private purgeExpired(now: number): void {
    this.lastPurge = now;
    const cutoff = now - this.config.tombstoneTtlMs;
    const ids: string[] = [];
    for (const e of this.index.entries()) if (e.deleted && e.lwt < cutoff) ids.push(e.id);
    if (ids.length === 0) return;
    this.index.purge(ids);
    this.wal.purge(ids);
    debug('purged %d tombstones older than %d ms from %s', ids.length, this.config.tombstoneTtlMs, this.path);
  }

  // ---- outside edits ----

  /** Called by the watcher: something may have changed (`inPlace`: see `FileWatcher`). Cheap unless it did. */
  private poke(inPlace: boolean): void {
    if (this.closed || this.released) return;
    // Our own write in flight may be renaming the file right now: compare once it is done.
    void this.writer
      .idle()
      .then(() => statOrUndefined(this.path))
      .then((s) => {
        if (s && !this.edits.problem && sameFingerprint(s, this.writer.knownVersion)) return;
        return this.exclusive(() => this.liveCheck(inPlace));
      })
      .catch((err: unknown) => debug('check of %s failed: %s', this.path, (err as Error).message));
  }

  /** A check outside of a flush: problems are reported as events, not thrown. */
  private async liveCheck(inPlace = true): Promise<void> {
    // Rarely waits (a write started since the caller looked): a check during our own write would see the new file
    // before `knownVersion` does and take our write for an outside edit.
    await this.writer.idle();
    this.watcher?.cancelPending();
    if (this.closed || this.released) return;
    try {
      await this.edits.recheck(inPlace);
    } catch {
      return; // reported by recheck
    }
    if (this.writer.pending) this.scheduleFlush();
  }
}

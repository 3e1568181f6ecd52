import { debuglog } from 'node:util';
import { P2PSyncError, toP2PSyncError } from '../core/errors.js';
import type { PeerState } from '../core/types.js';
import type { DocIndex, IndexEntry } from './doc-index.js';
import type { FileVersion } from './fs-util.js';
import type { PeerStateChange } from './indexed-store.js';
import { PeerJournal } from './peer-journal.js';
import { EntryPairs, type Sidecar, type SidecarSnapshot, type WalRecordOut } from './sidecar.js';
import { currentEntries } from './write-plan.js';

const debug = debuglog('p2psync');

/** What the write-ahead log works on, owned by the store. */
export interface WriteAheadHost {
  readonly index: DocIndex;
  readonly peerStates: Map<string, PeerState>;
  readonly sidecar: Sidecar;
  /** An append failed (the journal may end in a torn line): the store replaces the journal with a snapshot. */
  onFailure(err: P2PSyncError): void;
}

/** One turn of the queue: records to append with one fsync, or a snapshot that replaces the journal. */
type Job =
  | { kind: 'append'; records: WalRecordOut[]; fileSave?: FileSave; done: Settle }
  | { kind: 'snapshot'; write: () => Promise<void>; done: Settle };

interface FileSave {
  f: FileVersion | undefined;
  w: number;
}

interface Settle {
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * The write-ahead side of a file store (durability rule: docs/STORES.md, "Durability"). Every committed write and
 * peer-state change is cut into a write-ahead record of the sidecar journal and fsynced with group commit: while one
 * append + fsync is in flight, everything committed meanwhile waits and goes into the next one, so a burst of writes
 * costs one fsync per round trip to the disk, not one per write. `durable()` is the barrier replication awaits before
 * acknowledging.
 *
 * Every append of the journal goes through this one queue (write-ahead records, file saves, snapshots), so the
 * journal's order is the order in which records were cut: a peer state is always cut after (or with) the documents it
 * depends on, because it is changed after they were committed.
 */
export class WriteAhead {
  readonly peers = new PeerJournal();
  /** Last sequence number cut, and the last one known durable. */
  private seq = 0;
  private durableSeq = 0;
  /** Entries committed since the last cut (current ones are taken at the cut: see `currentEntries`). */
  private entries: IndexEntry[] = [];
  private purged: string[] = [];
  /** Records cut and not yet covered by a file save, for a snapshot to carry over (`snapshot`). */
  private uncovered: WalRecordOut[] = [];
  private readonly jobs: Job[] = [];
  private running = false;
  private scheduled = false;
  /** The turn in progress (see `run`). */
  private turn: Promise<void> | undefined;
  private waiters: Array<{ seq: number; settle: Settle }> = [];
  /** Set while appends fail (until a snapshot succeeds): barriers reject with it. */
  failure: P2PSyncError | undefined;
  private closed = false;
  /** Nothing is appended before the store attached the journal (or asked for its first snapshot). */
  private started = false;

  constructor(private readonly host: WriteAheadHost) {}

  /** Documents whose latest write is not durable in the journal (cut after the last fsync that worked, or not cut). */
  notDurable(): number {
    const ids = new Set<string>();
    for (const r of this.uncovered) if (r.s > this.durableSeq) for (const id of r.d?.ids() ?? []) ids.add(id);
    for (const e of this.entries) ids.add(e.id);
    return ids.size;
  }

  /** Something is cut, queued or being written. */
  get busy(): boolean {
    return (
      this.running || this.jobs.length > 0 || this.entries.length > 0 || this.purged.length > 0 || this.peers.pending
    );
  }

  /**
   * Starts appending, after the journal was attached (then `seq` is its last record's sequence number: all of it
   * durable, it was read back) or a snapshot was asked for (a new or torn journal).
   */
  start(seq: number): void {
    this.seq = this.durableSeq = seq;
    this.started = true;
    this.kick();
  }

  committed(entries: readonly IndexEntry[]): void {
    for (const e of entries) this.entries.push(e);
    this.kick();
  }

  peerChanged(key: string, change: PeerStateChange): void {
    this.peers.changed(key, change);
    this.kick();
  }

  purge(ids: readonly string[]): void {
    for (const id of ids) this.purged.push(id);
    this.kick();
  }

  /**
   * Resolves once everything committed before the call is fsynced in the journal; rejects while appends fail (the
   * writes stay in memory and are retried, see `FileStore`).
   */
  durable(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const seq = this.pendingCut() ? this.cut() : this.seq;
    if (seq <= this.durableSeq) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiters.push({ seq, settle: { resolve, reject } });
      this.kick();
    });
  }

  /** Cuts everything committed so far into a record (if anything) and returns the sequence number that covers it. */
  cut(): number {
    if (!this.pendingCut()) return this.seq;
    const { index, peerStates } = this.host;
    const entries = currentEntries(this.entries, index);
    const purged = this.purged;
    this.entries = [];
    this.purged = [];
    const rec: WalRecordOut = { t: 'w', s: ++this.seq };
    const peers = this.peers.take(peerStates, entries, purged, (id) => index.get(id));
    if (entries.length > 0) rec.d = new EntryPairs(entries);
    // The record holds the documents' texts now: the index keeps those, not the parsed states (`IndexEntry`).
    for (const e of entries) e.compact();
    if (purged.length > 0) {
      rec.x = purged;
      rec.c = index.clock;
    }
    if (peers.records.length > 0) rec.p = peers.records;
    // The peer journal's batch is final once cut: a failed append is repaired by a snapshot, which holds it.
    peers.done(true);
    this.uncovered.push(rec);
    this.enqueueAppend(rec);
    return this.seq;
  }

  /** Appends a file save: the user's file at `f` holds every record up to `w`. Resolves once it is fsynced. */
  recordFileSave(f: FileVersion | undefined, w: number): Promise<void> {
    const lastJob = this.jobs[this.jobs.length - 1];
    if (lastJob?.kind === 'append' && !lastJob.fileSave && !this.failure) {
      // Shares the fsync of the records waiting to go out (they only have no-op settles).
      return new Promise<void>((resolve, reject) => {
        lastJob.fileSave = { f, w };
        lastJob.done = { resolve, reject };
      });
    }
    return this.enqueue((done) => ({ kind: 'append', records: [], fileSave: { f, w }, done }));
  }

  /**
   * Replaces the journal with `snapshot` (the state at the moment `covered` was cut, which the user's file at `f`
   * holds), followed by the records cut since. Resolves once it is written.
   */
  snapshot(snapshot: SidecarSnapshot, f: FileVersion | undefined, clock: number, covered: number): Promise<void> {
    return this.enqueue((done) => ({
      kind: 'snapshot',
      write: async () => {
        const tail = this.uncovered.filter((r) => r.s > covered);
        await this.host.sidecar.writeSnapshot(snapshot, f, clock, covered, tail);
        this.uncovered = tail;
        // Every record cut so far is in the new journal (in the snapshot or its tail).
        const last = tail[tail.length - 1]?.s ?? covered;
        this.markDurable(Math.max(last, covered));
        this.failure = undefined;
      },
      done,
    }));
  }

  /** Stops once the append in flight is done; pending barriers reject. The store flushes before closing. */
  async close(): Promise<void> {
    this.closed = true;
    await this.turn;
    this.rejectWaiters(new P2PSyncError('E_INTERNAL', 'the store is closed'));
  }

  private pendingCut(): boolean {
    return this.entries.length > 0 || this.purged.length > 0 || this.peers.pending;
  }

  private enqueueAppend(rec: WalRecordOut): void {
    // Records cut between two turns go out together: the last queued append takes it if it has not started.
    const lastJob = this.jobs[this.jobs.length - 1];
    if (lastJob?.kind === 'append' && !lastJob.fileSave) {
      lastJob.records.push(rec);
      return;
    }
    this.jobs.push({ kind: 'append', records: [rec], done: { resolve: () => undefined, reject: () => undefined } });
    this.kick();
  }

  private enqueue(make: (done: Settle) => Job): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.jobs.push(make({ resolve, reject }));
      this.kick();
    });
  }

  /** Starts a turn soon (one turn of the event loop later: a burst of commits is one record). */
  private kick(): void {
    if (this.running || this.scheduled || this.closed || !this.started) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (!this.closed) this.turn = this.run();
    });
  }

  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (;;) {
        // Group commit: everything committed while the last fsync was in flight becomes one record now.
        this.cut();
        const job = this.jobs.shift();
        if (!job) break;
        try {
          if (job.kind === 'append' && !this.host.sidecar.appendable) {
            // The journal is new or broken and a snapshot is on its way (the store asked for one): it will hold
            // these records, and their barriers resolve then. A file save is recorded by that snapshot instead.
            if (job.fileSave)
              job.done.reject(this.failure ?? new P2PSyncError('E_INTERNAL', 'the journal waits for a snapshot'));
            else job.done.resolve();
            continue;
          }
          if (job.kind === 'snapshot') await job.write();
          else await this.append(job);
          job.done.resolve();
        } catch (err) {
          // A failed snapshot leaves no journal open to append to either.
          this.failed(err);
          job.done.reject(err);
        }
      }
    } finally {
      this.running = false;
    }
  }

  private async append(job: Extract<Job, { kind: 'append' }>): Promise<void> {
    const last = job.records[job.records.length - 1]?.s;
    const out: Array<WalRecordOut | { t: 'b'; f?: FileVersion; w: number }> = [...job.records];
    const save = job.fileSave;
    if (save) out.push({ t: 'b', ...(save.f ? { f: save.f } : {}), w: save.w });
    if (out.length === 0) return;
    await this.host.sidecar.append(...out);
    if (last !== undefined) this.markDurable(last);
    if (save) this.uncovered = this.uncovered.filter((r) => r.s > save.w);
  }

  private markDurable(seq: number): void {
    if (seq > this.durableSeq) this.durableSeq = seq;
    const still: Array<{ seq: number; settle: Settle }> = [];
    for (const w of this.waiters) {
      if (w.seq <= this.durableSeq) w.settle.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }

  /** An append failed: the journal may end in a torn line, so nothing more is appended until a snapshot replaces it. */
  private failed(err: unknown): void {
    const e = toP2PSyncError(err, 'E_IO');
    debug('journal append failed: %s', e.message);
    const first = !this.failure;
    this.failure = e;
    this.rejectWaiters(e);
    if (first) this.host.onFailure(e);
  }

  private rejectWaiters(err: unknown): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.settle.reject(err);
  }
}

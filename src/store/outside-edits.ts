import { setTimeout as delay } from 'node:timers/promises';
import { debuglog } from 'node:util';
import { P2PSyncError, toP2PSyncError } from '../core/errors.js';
import type { EmitEvent } from '../core/events.js';
import type { DocState, Json, WriteOrigin } from '../core/types.js';
import type { DocIndex, IndexEntry } from './doc-index.js';
import { diffFile, type FileDiff } from './diff.js';
import type { FileStoreStats, FileWriter } from './file-writer.js';
import { fingerprintOf, sameFingerprint, statOrUndefined, type FileVersion } from './fs-util.js';
import type { StoreFormat, UserContent, UserFile } from './user-file.js';

const debug = debuglog('p2psync');

/** A file written in place less than this long ago may still be half written: wait (at most SETTLE_TRIES times). */
const SETTLE_MS = 50;
const SETTLE_TRIES = 5;

/** What outside-edit reconciliation works on: the file store's own file, writer and index. */
export interface OutsideEditsOptions {
  path: string;
  format: StoreFormat;
  file: UserFile;
  writer: FileWriter;
  index: DocIndex;
  stats: FileStoreStats;
  emit: EmitEvent | undefined;
  /** Commits a batch to the store (its index, journal and `changes$`). */
  commit(entries: IndexEntry[], origin: WriteOrigin): void;
}

/**
 * Reconciles the user's file with what the file store last read or wrote (`FileWriter.knownDocs()`): any
 * difference is somebody else's edit, ingested as one batch with origin `outside`. While the file is missing or
 * invalid, `problem` holds the error and nothing may be written over the file. The file store calls it when it
 * opens, when the watcher pokes it and before each save.
 */
export class OutsideEdits {
  /** A collection file's other members, as last read (written back unchanged). */
  root: Record<string, Json> | undefined;
  problem: { fingerprint: FileVersion | undefined; error: P2PSyncError } | undefined;
  private readonly path: string;
  private readonly format: StoreFormat;
  private readonly file: UserFile;
  private readonly writer: FileWriter;
  private readonly index: DocIndex;
  private readonly stats: FileStoreStats;
  private readonly emit: EmitEvent | undefined;
  private readonly commit: (entries: IndexEntry[], origin: WriteOrigin) => void;

  constructor(o: OutsideEditsOptions) {
    this.path = o.path;
    this.format = o.format;
    this.file = o.file;
    this.writer = o.writer;
    this.index = o.index;
    this.stats = o.stats;
    this.emit = o.emit;
    this.commit = o.commit;
  }
  /**
   * Compares the file with what p2psync last knew and ingests any difference. Throws (after reporting it once
   * through `emit`) while the file is missing or invalid: nothing may be written over it then. `inPlace`: the
   * file may have been written in place, so its writer may not be done yet (a file replaced by rename is complete).
   */
  async recheck(inPlace = true): Promise<void> {
    for (let tries = 0; ; tries++) {
      const known = this.writer.knownVersion;
      const s = await statOrUndefined(this.path);
      const fp = s && fingerprintOf(s);
      if (fp && !this.problem && sameFingerprint(fp, known)) return;
      if (this.problem && sameFingerprint(fp, this.problem.fingerprint)) throw this.problem.error;
      // NDJSON lines appended to the version we know can be taken in alone (see `ingestAppended`).
      const raw = fp
        ? await this.file.readText(this.format === 'ndjson' && !this.problem ? known : undefined)
        : undefined;
      if (!raw) {
        return this.report(
          undefined,
          new P2PSyncError(
            'E_IO',
            `${this.path} is missing; waiting for it to come back before writing (to empty the store, write an empty collection)`,
            { file: this.path },
          ),
          'warning',
        );
      }
      if (raw.version.hash === known?.hash) {
        this.writer.knownVersion = raw.version;
        this.problem = undefined;
        return;
      }
      let counts = raw.appended !== undefined ? this.ingestAppended(raw.appended, raw.version) : undefined;
      if (!counts) {
        // A file written in place a moment ago may be half written (`>` truncates first): let it settle.
        if (inPlace && tries < SETTLE_TRIES && Date.now() - raw.version.mtimeMs < SETTLE_MS) {
          await delay(SETTLE_MS);
          continue;
        }
        let content: UserContent;
        try {
          content = this.file.parse(raw.text, false);
        } catch (err) {
          return this.report(raw.version, toP2PSyncError(err), 'error');
        }
        if (this.problem) debug('%s is valid again', this.path);
        this.problem = undefined;
        counts = this.ingest(content, raw.version, this.writer.knownDocs());
      }
      if (counts.created + counts.updated + counts.deleted > 0) {
        this.stats.outsideEdits++;
        this.emit?.({ event: 'outside-edit', store: this.path, ...counts });
      }
      return;
    }
  }

  private report(fingerprint: FileVersion | undefined, error: P2PSyncError, kind: 'error' | 'warning'): never {
    const details = error.details;
    if (!this.problem || this.problem.error.message !== error.message) {
      this.emit?.({ event: kind, code: error.code, message: error.message, details });
    }
    this.problem = { fingerprint, error };
    throw error;
  }

  /**
   * Turns the difference between the file's content and `before` (what the file held before) into one batch of
   * creates, updates and deletes with fresh lwts, and makes the content the new `known`.
   */
  ingest(content: UserContent, version: FileVersion, before: Map<string, DocState>): EditCounts {
    const d = diffFile(content.docs, before, (id) => this.index.get(id));
    this.root = content.root;
    return this.adopt(d, d.next, version);
  }

  /**
   * NDJSON lines appended to the file as p2psync knew it: only they are parsed. Complete lines are complete
   * documents whatever the writer does next, so they need no settling time, and a big file costs no more than the
   * lines. Returns undefined when the lines need the whole file's view (one does not parse, or repeats a key the
   * file holds), and the caller reads the whole file.
   */
  private ingestAppended(text: string, version: FileVersion): EditCounts | undefined {
    let added: Map<string, DocState>;
    try {
      added = this.file.parse(text, false).docs;
    } catch {
      return undefined;
    }
    const known = this.writer.knownDocs();
    for (const id of added.keys()) if (known.has(id)) return undefined;
    const d = diffFile(added, new Map(), (id) => this.index.get(id));
    for (const [id, doc] of d.next) known.set(id, doc);
    return this.adopt(d, known, version);
  }

  /** Commits a diff's batch and makes `next` (in file order) what the file is known to hold at `version`. */
  private adopt(d: FileDiff, next: Map<string, DocState>, version: FileVersion): EditCounts {
    if (d.batch.size > 0) this.commit(this.index.set(d.batch), { kind: 'outside' });
    // Pending writes the file now shows anyway need no rewrite, only recording (those it changed were superseded
    // by the batch).
    this.writer.settled(d.settled);
    this.writer.adoptFile(next, version);
    return { created: d.created, updated: d.updated, deleted: d.deleted };
  }
}

export interface EditCounts {
  created: number;
  updated: number;
  deleted: number;
}

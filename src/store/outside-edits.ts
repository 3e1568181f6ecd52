import { open, type FileHandle } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { debuglog } from 'node:util';
import { P2PSyncError, toP2PSyncError } from '../core/errors.js';
import type { EmitEvent } from '../core/events.js';
import type { DocState, Json, WriteOrigin } from '../core/types.js';
import type { DocIndex, IndexEntry } from './doc-index.js';
import { diffFile, diffSpan, type FileDiff } from './diff.js';
import { heldOf } from './entry-states.js';
import { sameVersion, type FileStoreStats, type FileWriter } from './file-writer.js';
import {
  fingerprintOf,
  readLinesAfter,
  sameFingerprint,
  statOrUndefined,
  storeTarget,
  type Fingerprint,
  type FileVersion,
} from './fs-util.js';
import { readDelta, readWhole, scanArray, type ArrayRanges, type DeltaResult, type JsonImage } from './json-delta.js';
import type { StoreFormat, UserContent, UserFile, UserText } from './user-file.js';

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
  /** The JSON version last read, kept to compare the next one with (see `JsonImage`). */
  private image: JsonImage | undefined;

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
    /** Lines appended to an NDJSON file, committed before the rest of the file was read (see `takeAppended`). */
    let early: Appended | undefined;
    for (let tries = 0; ; tries++) {
      const known = this.writer.knownVersion;
      const s = await statOrUndefined(this.path);
      const fp = s && fingerprintOf(s);
      if (fp && !this.problem && sameFingerprint(fp, known)) return;
      if (this.problem && sameFingerprint(fp, this.problem.fingerprint)) throw this.problem.error;
      if (fp && known && !early && !this.problem && this.format === 'ndjson')
        early = await this.takeAppended(known, fp);
      // A JSON version is opened before it is read and kept open if it is the version read: the next edit is compared
      // with it (see `JsonImage`), whoever replaces the file meanwhile.
      const opened =
        fp && this.imaging
          ? await storeTarget(this.path)
              .then((target) => open(target, 'r'))
              .catch(() => undefined)
          : undefined;
      try {
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
        // (A file back at the known version after lines were taken early lost those lines: diffed below.)
        if (raw.version.hash === known?.hash && !early) {
          this.writer.knownVersion = raw.version;
          this.problem = undefined;
          return;
        }
        const rest = early ? afterPrefix(raw.appended, early.text) : raw.appended;
        let counts = rest !== undefined ? this.ingestAppended(rest, raw.version) : undefined;
        if (!counts) {
          // A file written in place a moment ago may be half written (`>` truncates first): let it settle.
          if (inPlace && tries < SETTLE_TRIES && Date.now() - raw.version.mtimeMs < SETTLE_MS) {
            await delay(SETTLE_MS);
            continue;
          }
          // A JSON file changed in a few documents: only those are parsed (see `JsonImage`).
          const delta = await this.readDelta(raw);
          if (delta) {
            this.problem = undefined;
            const before = this.writer.knownDocs();
            const d = diffSpan(delta.docs, delta.changed, delta.removed, before, (id) => this.index.get(id));
            counts = this.adopt(d, d.next, raw.version);
            await this.keepImage(opened, raw.version, delta.ranges);
          } else {
            let content: UserContent;
            try {
              content = this.file.parse(raw.text, false);
            } catch (err) {
              return this.report(raw.version, toP2PSyncError(err), 'error');
            }
            if (this.problem) debug('%s is valid again', this.path);
            this.problem = undefined;
            counts = this.ingest(content, raw.version, this.writer.knownDocs());
            await this.keepImage(opened, raw.version);
          }
        }
        if (early) counts = sumCounts(counts, early.counts);
        if (counts.created + counts.updated + counts.deleted > 0) {
          this.stats.outsideEdits++;
          this.emit?.({ event: 'outside-edit', store: this.path, ...counts });
        }
        return;
      } finally {
        if (opened && opened !== this.image?.handle) await opened.close().catch(() => undefined);
      }
    }
  }

  /** Releases the kept version of the file (see `JsonImage`). */
  async close(): Promise<void> {
    await this.dropImage();
  }

  /** Only a plain JSON array is compared element by element (a collection file's other members may change too). */
  private get imaging(): boolean {
    return this.format === 'json' && this.file.options.collection === undefined;
  }

  /** The new version's documents from the image of the version p2psync knows, if it has one and it applies. */
  private async readDelta(raw: UserText): Promise<DeltaResult | undefined> {
    const image = this.image;
    const bytes = raw.bytes;
    if (!image || !bytes) return undefined;
    // p2psync's own writes replace the version the image describes: it is of no use any more.
    if (!sameVersion(image.version, this.writer.knownVersion)) {
      await this.dropImage();
      return undefined;
    }
    return readDelta(image, bytes, this.file.options.primaryKey);
  }

  /**
   * Keeps `handle` (the version just ingested, if it is still that version) with where its documents are (`ranges`,
   * or found by scanning it), for the next edit to be compared with. Without it (the file was replaced before it
   * was opened, or is not a plain array of objects) the next edit is read the ordinary way. The caller closes the
   * handle unless it became the image's.
   */
  private async keepImage(handle: FileHandle | undefined, version: FileVersion, ranges?: ArrayRanges): Promise<void> {
    await this.dropImage();
    if (!handle) return;
    try {
      if (!sameFingerprint(fingerprintOf(await handle.stat()), version)) return;
      if (!ranges) {
        const bytes = await readWhole(handle, version.size);
        if (!bytes || !sameFingerprint(fingerprintOf(await handle.stat()), version)) return;
        ranges = scanArray(bytes);
      }
      const known = this.writer.knownDocs();
      if (!ranges || ranges.starts.length !== known.size) return;
      const ids: string[] = [];
      const docs: JsonImage['docs'] = [];
      for (const [id, held] of heldOf(known)) {
        ids.push(id);
        docs.push(held);
      }
      const { open: at, close, starts, ends } = ranges;
      this.image = {
        handle,
        version,
        open: at,
        close,
        starts: Float64Array.from(starts),
        ends: Float64Array.from(ends),
        ids,
        docs,
      };
    } catch (err) {
      debug('no image of %s kept: %s', this.path, (err as Error).message);
    }
  }

  private async dropImage(): Promise<void> {
    const image = this.image;
    this.image = undefined;
    await image?.handle.close().catch(() => undefined);
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
   * NDJSON lines appended to the version p2psync knows (`known`; the file is `fp` now), committed at once: a live
   * change reaches the peers before the whole file is read and hashed to prove that nothing else changed, which
   * for a big file costs more than the rest of the way (`recheck` does that next). Complete lines are documents of
   * the file whatever that proof finds: if something else changed too, the whole file is diffed against what
   * p2psync knew plus these lines (which are then unchanged, or deleted if the file lost them meanwhile). Only
   * lines of new ids are taken this way; anything else waits for the whole file.
   */
  private async takeAppended(known: FileVersion, fp: Fingerprint): Promise<Appended | undefined> {
    if (fp.ino !== known.ino || fp.size <= known.size) return undefined;
    const text = await readLinesAfter(this.path, known.size, known.ino);
    if (text === undefined) return undefined;
    const counts = this.takeLines(text);
    return counts && { text, counts };
  }

  /**
   * NDJSON lines appended to the file as p2psync knew it: only they are parsed. Complete lines are complete
   * documents whatever the writer does next, so they need no settling time, and a big file costs no more than the
   * lines. Returns undefined when the lines need the whole file's view (one does not parse, or repeats a key the
   * file holds), and the caller reads the whole file.
   */
  private ingestAppended(text: string, version: FileVersion): EditCounts | undefined {
    const counts = this.takeLines(text);
    if (counts) this.writer.adoptFile(this.writer.knownDocs(), version);
    return counts;
  }

  /**
   * Commits appended lines' documents and adds them to what the file is known to hold; undefined (nothing done) when
   * one does not parse or repeats a key the file holds.
   */
  private takeLines(text: string): EditCounts | undefined {
    let added: Map<string, DocState>;
    try {
      added = this.file.parse(text, false).docs;
    } catch {
      return undefined;
    }
    const known = this.writer.knownDocs();
    for (const id of added.keys()) if (known.has(id)) return undefined;
    const d = diffFile(added, new Map(), (id) => this.index.get(id));
    const counts = this.take(d);
    for (const [id, doc] of d.next) known.set(id, doc);
    return counts;
  }

  /** Commits a diff's batch and makes `next` (in file order) what the file is known to hold at `version`. */
  private adopt(d: FileDiff, next: Map<string, DocState>, version: FileVersion): EditCounts {
    const counts = this.take(d);
    this.writer.adoptFile(next, version);
    return counts;
  }

  /** Commits a diff's batch. */
  private take(d: FileDiff): EditCounts {
    if (d.batch.size > 0) this.commit(this.index.set(d.batch), { kind: 'outside' });
    // Pending writes the file now shows anyway need no rewrite, only recording (those it changed were superseded
    // by the batch).
    this.writer.settled(d.settled);
    return { created: d.created, updated: d.updated, deleted: d.deleted };
  }
}

/** Lines `takeAppended` committed: their text and what they did. */
interface Appended {
  text: string;
  counts: EditCounts;
}

/** `text` without `prefix`, if it starts with it. */
function afterPrefix(text: string | undefined, prefix: string): string | undefined {
  return text?.startsWith(prefix) ? text.slice(prefix.length) : undefined;
}

function sumCounts(a: EditCounts, b: EditCounts): EditCounts {
  return { created: a.created + b.created, updated: a.updated + b.updated, deleted: a.deleted + b.deleted };
}

export interface EditCounts {
  created: number;
  updated: number;
  deleted: number;
}

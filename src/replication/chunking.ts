import { randomToken } from '../core/random.js';
import { RXDB_CHUNK_CHARS } from './limits.js';

/**
 * Message framing of docs/PROTOCOL.md §2.1. A message is one JSON text; one longer than the threshold travels as
 * `{"chunk":{id,index,total,data}}` frames whose `data` slices join back into the text.
 */

/** Room left in a frame for the chunk envelope and up to two escaped lone surrogates at the slice ends. */
const ENVELOPE_RESERVE_BYTES = 1024;

/** How a link's messages are split, derived from the remote's largest accepted message. */
export interface FrameSizes {
  /** Messages up to this many characters go out as one frame. */
  threshold: number;
  /** Longer messages still go out as one frame when they take at most this many UTF-8 bytes. */
  maxBytes: number;
  /** Characters of message text per chunk once a message is chunked. */
  chunkChars: number;
}

/**
 * Frame sizes for a remote that accepts messages of `maxMessageSize` bytes. `JSON.stringify` output needs at most
 * 3 UTF-8 bytes per UTF-16 unit (lone surrogates come out escaped as ASCII), so a third of the limit is safe
 * unchunked; RxDB receivers accept unchunked frames of any size they can receive. Re-escaping a slice inside the
 * envelope also stays within 3 bytes per unit (`"` and `\` become 2 bytes), except a surrogate pair cut at a slice
 * end, which becomes a 6-byte `\udXXX`; the reserve covers that and the envelope. Never below RxDB's 16,384.
 */
export function frameSizes(maxMessageSize: number): FrameSizes {
  const third = Math.floor(maxMessageSize / 3);
  return {
    threshold: Math.max(RXDB_CHUNK_CHARS, third),
    maxBytes: Math.max(RXDB_CHUNK_CHARS, maxMessageSize),
    chunkChars: Math.max(RXDB_CHUNK_CHARS, Math.floor((maxMessageSize - ENVELOPE_RESERVE_BYTES) / 3)),
  };
}

/** The RxDB sizes: chunk everything above 16,384 characters into 16,384-character slices. */
export const RXDB_FRAME_SIZES: FrameSizes = Object.freeze({
  threshold: RXDB_CHUNK_CHARS,
  maxBytes: RXDB_CHUNK_CHARS,
  chunkChars: RXDB_CHUNK_CHARS,
});

/**
 * The message goes out as one frame: it is short enough in characters to fit whatever they encode to, or (mostly
 * ASCII JSON) its UTF-8 bytes fit the remote's limit. `bytes` is the text's UTF-8 length when the caller has it.
 */
export function fitsOneFrame(text: string, sizes: FrameSizes, bytes?: number): boolean {
  return (
    text.length <= sizes.threshold ||
    (text.length <= sizes.maxBytes && (bytes ?? Buffer.byteLength(text, 'utf8')) <= sizes.maxBytes)
  );
}

/** Splits a message's JSON text into frames. */
export function encodeFrames(text: string, sizes: FrameSizes, chunkId: () => string = () => randomToken(10)): string[] {
  if (fitsOneFrame(text, sizes)) return [text];
  const total = Math.ceil(text.length / sizes.chunkChars);
  const id = chunkId();
  const frames: string[] = new Array<string>(total);
  for (let index = 0; index < total; index++) {
    const data = text.slice(index * sizes.chunkChars, (index + 1) * sizes.chunkChars);
    frames[index] = JSON.stringify({ chunk: { id, index, total, data } });
  }
  return frames;
}

export interface ReassemblyLimits {
  maxChunkTotal: number;
  maxIncompleteChunkSets: number;
  maxMessageChars: number;
}

interface ChunkSet {
  total: number;
  parts: Array<string | undefined>;
  received: number;
  chars: number;
}

/** Why a chunk was refused; the caller counts these. */
export type ChunkRejection = 'shape' | 'total' | 'index' | 'mismatch' | 'duplicate' | 'size' | 'evicted' | 'discarded';

const DISCARDED_MEMORY = 64;
const MAX_CHUNK_ID_LENGTH = 64;

/**
 * Joins chunk frames of one link back into messages, within limits: `total` and `index` must be integers with
 * `0 <= index < total <= maxChunkTotal`, the parts of a set must agree on `total` and not repeat, a message may
 * not exceed `maxMessageChars`, and all incomplete sets of the link together may not either. At most
 * `maxIncompleteChunkSets` sets are open at once: a new one evicts the oldest. Chunks of a set that was dropped
 * are ignored (a short memory of dropped ids), so a dropped set does not restart from its middle.
 */
export class Reassembler {
  private readonly sets = new Map<string, ChunkSet>();
  private readonly discarded = new Set<string>();
  private openChars = 0;

  constructor(
    private readonly limits: ReassemblyLimits,
    private readonly onReject: (reason: ChunkRejection) => void = () => {},
  ) {}

  /** Characters held in incomplete sets. */
  get pendingChars(): number {
    return this.openChars;
  }

  get pendingSets(): number {
    return this.sets.size;
  }

  /** Takes the value of a frame's `chunk` member; returns the whole message text once its last part arrived. */
  add(chunk: unknown): string | undefined {
    if (typeof chunk !== 'object' || chunk === null || Array.isArray(chunk)) return this.reject('shape');
    const { id, index, total, data } = chunk as Record<string, unknown>;
    if (typeof id !== 'string' || id.length === 0 || id.length > MAX_CHUNK_ID_LENGTH || typeof data !== 'string') {
      return this.reject('shape');
    }
    if (!Number.isSafeInteger(total) || (total as number) < 1 || (total as number) > this.limits.maxChunkTotal) {
      return this.reject('total');
    }
    const n = total as number;
    if (!Number.isSafeInteger(index) || (index as number) < 0 || (index as number) >= n) return this.reject('index');
    const i = index as number;
    if (this.discarded.has(id)) return this.reject('discarded');
    if (data.length > this.limits.maxMessageChars) return this.drop(id, 'size');
    if (n === 1) return data;

    let set = this.sets.get(id);
    if (!set) {
      while (this.sets.size >= this.limits.maxIncompleteChunkSets) {
        const oldest = this.sets.keys().next().value as string;
        this.drop(oldest, 'evicted');
      }
      set = { total: n, parts: new Array<string | undefined>(n), received: 0, chars: 0 };
      this.sets.set(id, set);
    }
    if (set.total !== n) return this.drop(id, 'mismatch');
    if (set.parts[i] !== undefined) return this.drop(id, 'duplicate');
    if (
      set.chars + data.length > this.limits.maxMessageChars ||
      this.openChars + data.length > this.limits.maxMessageChars
    ) {
      return this.drop(id, 'size');
    }
    set.parts[i] = data;
    set.received++;
    set.chars += data.length;
    this.openChars += data.length;
    if (set.received < set.total) return undefined;
    this.sets.delete(id);
    this.openChars -= set.chars;
    return set.parts.join('');
  }

  /** Forgets everything (the link closed). */
  clear(): void {
    this.sets.clear();
    this.discarded.clear();
    this.openChars = 0;
  }

  private reject(reason: ChunkRejection): undefined {
    this.onReject(reason);
    return undefined;
  }

  private drop(id: string, reason: ChunkRejection): undefined {
    const set = this.sets.get(id);
    if (set) {
      this.sets.delete(id);
      this.openChars -= set.chars;
    }
    this.discarded.add(id);
    if (this.discarded.size > DISCARDED_MEMORY) this.discarded.delete(this.discarded.values().next().value as string);
    return this.reject(reason);
  }
}

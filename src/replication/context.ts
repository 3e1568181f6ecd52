import type { EmitEvent } from '../core/events.js';
import type { PeerLink } from '../core/link.js';
import type { PeerStateStore, Store } from '../core/store.js';
import type { ConflictKeeper } from '../core/conflicts.js';
import type { ConflictStrategy } from './conflict.js';
import type { ReplicationLimits } from './limits.js';
import type { Rpc } from './rpc.js';
import type { DocRules } from './validate.js';

/**
 * Which way documents may flow on a link. `pull`: this peer only receives (as fork it never pushes; as master it
 * serves empty pages and no change stream, but accepts writes). `push`: this peer only sends (as fork it never
 * pulls; as master it serves pages and streams, and acknowledges writes without applying them).
 */
export type Direction = 'both' | 'pull' | 'push';

/** Counters of one link; documents are counted as they cross the link, in either role. */
export interface ReplicationStats {
  /** Documents received from the peer and kept: as fork from pages and stream events, as master from the fork's writes. */
  pulled: number;
  /** Rows this side's fork sent in `masterWrite` (accepted and refused). */
  pushed: number;
  /** Conflicts this side resolved (only forks resolve). */
  conflicts: number;
  /** Documents sent to the peer in any message: pages, stream events, write rows, returned conflicts. */
  sent: number;
  /** Documents received from the peer in any message. */
  received: number;
  /** Frames, chunks, requests and documents refused as invalid. */
  rejected: number;
}

/** What the master and fork halves of one link share. Implemented by the link's PeerReplication. */
export interface LinkContext {
  readonly store: Store;
  /** Where the fork keeps its per-pair state. */
  readonly meta: PeerStateStore;
  readonly link: PeerLink;
  readonly rpc: Rpc;
  readonly direction: Direction;
  readonly conflict: ConflictStrategy;
  /** Keeps the versions resolutions discard; undefined: they are not kept. */
  readonly keeper: ConflictKeeper | undefined;
  readonly limits: ReplicationLimits;
  readonly rules: DocRules;
  readonly stats: ReplicationStats;
  readonly emit: EmitEvent;
  readonly retryDelayMs: number;
  /** The peer's storage token once the handshake got it. */
  readonly peerToken: string | undefined;
  /** The peer's `token` request carried the p2psync capability (`P2PSYNC_CAPABILITY`): it is a p2psync peer. */
  readonly peerIsP2PSync: boolean;
  /** The capability version it announced (0: none, an RxDB peer). */
  readonly peerP2PSyncVersion: number;
  readonly closed: boolean;
  /** Something that affects `isIdle()` happened. */
  changed(): void;
  /** Keeps a store operation in the set that `close()` waits for. */
  track<T>(work: Promise<T>): Promise<T>;
  /** Reports a failure as an `error` event (and debug log). */
  fail(err: unknown, during: string): void;
  /** Counts refused input and reports the first few as `warning` events; too many drop the peer (`dropPeer`). */
  reject(reason: string): void;
  /**
   * The peer exceeded a bound on what one link may cost (reassembly, queued requests, rows per request, refused
   * input): emits `peer-rejected` once and closes the link, which releases everything buffered for it.
   */
  dropPeer(reason: string, limit: string): void;
}

/** A plain-JSON error for error responses (RxDB's `errorToPlainJson` shape, without the stack). */
export function errorJson(err: unknown): { name: string; message: string; code?: string } {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { name: err.name, message: err.message, ...(typeof code === 'string' ? { code } : {}) };
  }
  return { name: 'Error', message: String(err) };
}

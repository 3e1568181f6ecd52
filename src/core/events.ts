/**
 * Machine-readable events. With `--json` each one is printed as one NDJSON line on stdout with two extra
 * members added by the CLI: `v` (schema version, bumped only on incompatible changes) and `time` (ISO 8601).
 * The README documents every event; fields are only ever added, never renamed or removed, within a version.
 */
import type { LinkPath } from './link.js';

export const EVENT_SCHEMA_VERSION = 1;

export type SyncEvent =
  | { event: 'listening'; host: string; port: number; url: string; tls: boolean; auth: boolean; redis?: string }
  | { event: 'redis-up'; url: string }
  | { event: 'redis-down'; url: string; message: string }
  | { event: 'signaling-connected'; url: string; topic: string; peerId: string }
  | { event: 'signaling-disconnected'; url: string; topic: string; reason: string; retryInMs: number }
  | { event: 'signaling-hosted'; url: string; port: number }
  | {
      event: 'joined';
      topic: string;
      topics: string[];
      store: string;
      storageToken: string;
      signal: string;
      conflict: string;
      deviceId?: string;
      secret?: boolean;
      allowPeers?: number;
    }
  | {
      event: 'peer-connected';
      topic: string;
      peerId: string;
      peerToken: string;
      role: 'master' | 'fork';
      path?: LinkPath;
    }
  | { event: 'peer-disconnected'; topic: string; peerId: string; reason: string }
  /**
   * A peer was refused and its link closed: it failed the allowlist or the trust handshake (nothing was served or
   * read), or it exceeded a bound on what one link may buffer (`limit` names the bound).
   */
  | { event: 'peer-rejected'; topic?: string; peerId: string; reason: string; deviceId?: string; limit?: string }
  /** A relayed signal that was not sealed or did not open under the topic's key (first per sender and reason). */
  | { event: 'signal-rejected'; topic: string; peerId: string; reason: string; total: number }
  | { event: 'pulled'; peerId: string; count: number; total: number }
  | { event: 'pushed'; peerId: string; count: number; conflicts: number; total: number }
  | {
      event: 'conflict';
      peerId: string;
      id: string;
      strategy: string;
      local: unknown;
      remote: unknown;
      winner: 'local' | 'remote' | 'merged';
      resolved: unknown;
      /** The versions this resolution discarded and this peer kept (see `p2psync conflicts`); `[]`: nothing lost. */
      kept: Array<{ side: 'local' | 'remote'; vid: string; fields?: string[] }>;
    }
  | { event: 'outside-edit'; store: string; created: number; updated: number; deleted: number }
  | { event: 'synced'; peers: number; documents: number }
  | { event: 'document'; document: unknown }
  | { event: 'identity'; deviceId: string; file: string; created: boolean }
  | { event: 'rekeyed'; store: string; documents: number; peerStates: number }
  /** `put` / `rm` / `conflicts resolve`: `conflicts` lists the written ids that have kept versions (`p2psync conflicts show`). */
  | { event: 'written'; ids: string[]; conflicts: string[] }
  /** `p2psync conflicts ls`: one per document with kept versions. */
  | { event: 'conflicted'; id: string; versions: number; latest: string }
  /** `p2psync conflicts show`: the current document (null: deleted or absent) and the kept versions, numbered from 1. */
  | { event: 'kept-versions'; id: string; current: unknown; versions: unknown[] }
  /** `p2psync conflicts resolve`: the version written (null with --keep-current) and how many kept versions were cleared. */
  | { event: 'conflict-cleared'; id: string; used: number | null; cleared: number }
  | { event: 'warning'; code: string; message: string; details?: Record<string, unknown> }
  | { event: 'error'; code: string; message: string; details?: Record<string, unknown> }
  | { event: 'check'; check: string; target: string; ok: boolean; reason: string; details?: Record<string, unknown> }
  | { event: 'closed'; reason: string; exitCode: number }
  // p2psync verify
  | {
      event: 'verify-peer';
      peerId: string;
      kind: 'p2psync' | 'p2psync-old' | 'rxdb' | 'observer';
      verifiable: boolean;
      peerToken?: string;
    }
  | {
      event: 'verified';
      equal: boolean;
      /** False when more ids may differ than `differing` lists (the limit was reached). */
      complete: boolean;
      replicas: Array<{ name: string; peerId?: string; documents: number; digest: string }>;
      notVerifiable: Array<{ peerId: string; kind: string; peerToken?: string }>;
      /** Per differing id: each replica's leaf hash (first 16 hex digits), null where the document is missing. */
      differing: Array<{ id: string; replicas: Record<string, string | null> }>;
    };

export type SyncEventName = SyncEvent['event'];

/*
 * One listener style across the code base:
 * - `onX(handler)` registers a listener and returns an `Unsubscribe` that removes it (calling it twice is harmless);
 * - a component or core function that reports events receives an `emit` sink (`EventSink<E>`), never `onEvent`;
 * - every event union is tagged by `event`, as the CLI's JSON lines are (SyncEvent, MeshEvent, SignalServerEvent);
 * - a long-lived object whose events begin after it is created exposes them as rxjs Observables, as RxDB does:
 *   `events$` (and `error$` for failures), completed when the object closes.
 * Callbacks a collaborator is built with and must answer (the RPC layer's `handlers`, a watcher's check, the trust
 * gate's `onRejected`) are hooks, one per instance, not listeners: they register nothing and return nothing.
 */

/** Removes the listener an `onX(handler)` call registered. Idempotent. */
export type Unsubscribe = () => void;

/** Adds `handler` to `handlers` and returns the function that removes it: the body of most `onX` methods. */
export function addListener<H>(handlers: Set<H>, handler: H): Unsubscribe {
  handlers.add(handler);
  return () => void handlers.delete(handler);
}

/** Where a component reports its events (passed in as `emit`). Must not throw. */
export type EventSink<E> = (event: E) => void;

/** Where core functions report what they do; the CLI renders it as NDJSON or human text. */
export type EmitEvent = EventSink<SyncEvent>;

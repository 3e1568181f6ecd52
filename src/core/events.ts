/**
 * Machine-readable events. With `--json` each one is printed as one NDJSON line on stdout with two extra
 * members added by the CLI: `v` (schema version, bumped only on incompatible changes) and `time` (ISO 8601).
 * The README documents every event; fields are only ever added, never renamed or removed, within a version.
 */
export const EVENT_SCHEMA_VERSION = 1;

export type SyncEvent =
  | { event: 'listening'; host: string; port: number; url: string; tls: boolean; auth: boolean }
  | { event: 'signaling-connected'; url: string; topic: string; peerId: string }
  | { event: 'signaling-disconnected'; url: string; topic: string; reason: string; retryInMs: number }
  | { event: 'signaling-hosted'; url: string; port: number }
  | { event: 'joined'; topic: string; topics: string[]; store: string; storageToken: string; signal: string; conflict: string }
  | { event: 'peer-connected'; topic: string; peerId: string; peerToken: string; role: 'master' | 'fork' }
  | { event: 'peer-disconnected'; topic: string; peerId: string; reason: string }
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
    }
  | { event: 'outside-edit'; store: string; created: number; updated: number; deleted: number }
  | { event: 'synced'; peers: number; documents: number }
  | { event: 'document'; document: unknown }
  | { event: 'written'; ids: string[]; conflicts: string[] }
  | { event: 'warning'; code: string; message: string; details?: Record<string, unknown> }
  | { event: 'error'; code: string; message: string; details?: Record<string, unknown> }
  | { event: 'closed'; reason: string; exitCode: number }
  // p2psync verify
  | { event: 'verify-peer'; peerId: string; kind: 'p2psync' | 'p2psync-old' | 'rxdb' | 'observer'; verifiable: boolean; peerToken?: string }
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

/** Where core functions report what they do; the CLI renders it as NDJSON or human text. */
export type EmitEvent = (event: SyncEvent) => void;

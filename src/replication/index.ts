// The replication core: RxDB 17 WebRTC replication protocol (docs/PROTOCOL.md §2-4) over the Store and PeerLink contracts.
export { replicate, type PeerReplication, type ReplicationOptions } from './peer-replication.js';
export type { Direction, ReplicationStats } from './context.js';
export {
  ConflictRegistry,
  createConflictRegistry,
  lastWriteWins,
  masterWins,
  canonicalJson,
  type ConflictInput,
  type ConflictStrategy,
  type ConflictStrategyFactory,
  type ConflictStrategyOptions,
} from './conflict.js';
export { isMaster, sha256hex } from './master-rule.js';
export { encodeFrames, frameSizes, Reassembler, RXDB_FRAME_SIZES, type FrameSizes } from './chunking.js';
export {
  DEFAULT_BATCH_SIZE,
  DEFAULT_LIMITS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_RETRY_DELAY_MS,
  RXDB_CHUNK_CHARS,
  type ReplicationLimits,
} from './limits.js';

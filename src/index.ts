// Library entry point.
export * from './core/types.js';
export * from './core/errors.js';
export * from './core/events.js';
export type { PeerStateStore, Store } from './core/store.js';
export type { PeerLink } from './core/link.js';
export {
  startSignalServer,
  DEFAULT_SIGNAL_PORT,
  DEFAULT_SIGNAL_HOST,
  DEFAULT_SIGNAL_LIMITS,
  SIGNAL_CLOSE_CODES,
} from './signaling/server.js';
export type { SignalServer, SignalServerOptions, SignalLimits, SignalServerEvent } from './signaling/server.js';
export { openStore, formatFromPath, DEFAULT_TOMBSTONE_TTL_MS } from './store/open.js';
export type { FileStoreOptions, OpenedStore, StoreFormat } from './store/open.js';
export { MemoryStore } from './store/memory-store.js';
export { StoreEncryption, type EncryptionOptions } from './crypt/store-encryption.js';
export { EncryptedStore } from './crypt/encrypted-store.js';
export { rekey, type RekeyOptions, type RekeyResult } from './crypt/rekey.js';
export type { KeySource } from './crypt/secret.js';
export * from './replication/index.js';
export { runJoin, conflictStrategyNames, type JoinOptions, type JoinResult } from './session.js';
export { createSignalingClient, type SignalingClient } from './signaling/client.js';
export { createDefaultSignaling } from './signaling/embedded.js';
export { createMesh, type Mesh, type MeshOptions } from './transport/mesh.js';
export { createMemoryLinkPair } from './transport/memory-link.js';
export type { SignalChannel, SignalMessage, SignalStatus } from './core/signal.js';

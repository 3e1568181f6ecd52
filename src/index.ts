// Library entry point.
export * from './core/types.js';
export * from './core/errors.js';
export * from './core/events.js';
export type { Store } from './core/store.js';
export type { PeerLink } from './core/link.js';

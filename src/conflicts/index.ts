// Conflicts nobody loses: the `merge` strategy, user handlers (`--conflict-handler`), the versions resolutions
// discard (kept beside the sidecar) and the core of `p2psync conflicts`. Replication reaches it only through the
// ConflictStrategy and ConflictKeeper interfaces.
export { mergeStates, mergeStrategy, type MergeOutcome } from './merge.js';
export { loadConflictHandler, handlerStrategy, type RxConflictHandlerLike } from './handler.js';
export {
  DEFAULT_KEEP_CONFLICTS,
  MemoryKeptVersions,
  checkKeepLimit,
  keptCodecFor,
  plainCodec,
  type KeptCodec,
  type KeptVersion,
  type KeptVersionStore,
} from './kept.js';
export { FileKeptVersions, keptPath } from './kept-file.js';
export {
  listConflicts,
  showConflict,
  resolveConflictRecord,
  idsWithKeptVersions,
  type ConflictSummary,
  type ConflictsOptions,
  type NumberedVersion,
  type ResolveChoice,
  type ResolveResult,
  type ShownConflict,
} from './command.js';

import type { DocState } from '../../src/core/types.js';

/** A document state as stores and replication hold it: `id`, the given fields, and `_deleted`. */
export function doc(id: string, fields: Record<string, unknown> = {}, deleted = false): DocState {
  return { id, ...fields, _deleted: deleted } as DocState;
}

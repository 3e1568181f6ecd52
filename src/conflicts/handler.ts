import { resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { docEquals } from '../core/doc.js';
import { P2PSyncError } from '../core/errors.js';
import type { DocState } from '../core/types.js';
import type { ConflictInput, ConflictStrategy, Discarded } from '../replication/conflict.js';
import { checkDoc } from '../replication/validate.js';
import { DEFAULT_LIMITS } from '../replication/limits.js';

/** RxDB's `RxConflictHandler` shape (rxdb/src/types/conflict-handling.d.ts), as a user's module exports it. */
export interface RxConflictHandlerLike {
  isEqual(a: unknown, b: unknown, context: string): boolean;
  resolve(
    input: { newDocumentState: unknown; realMasterState: unknown; assumedMasterState?: unknown },
    context: string,
  ): unknown;
}

/** The contexts RxDB 17 passes, so a handler that looks at them behaves the same. */
const RESOLVE_CONTEXT = 'replication-resolve-conflict';
const EQUAL_CONTEXT = 'upstream-check-if-equal';

/**
 * Loads `--conflict-handler FILE`: an ES module whose default export, or export `conflictHandler`, has
 * `isEqual(a, b, context)` (synchronous) and `resolve(input, context)` (sync or async). Fails with
 * E_CONFLICT_HANDLER naming the file when it cannot be imported or lacks the two functions (exit 2 at start-up).
 *
 * At run time the strategy never trusts the handler: a throw, a rejection, an `isEqual` that does not return a
 * boolean, or a result that is not a document of the same id becomes an E_CONFLICT_HANDLER error for that one
 * document (replication reports it and leaves the document as it was). p2psync compares states strictly everywhere
 * else; the handler's `isEqual` is asked once per conflict, before `resolve`: when it calls the two states equal, the
 * master's state is taken, as RxDB's fork does.
 */
export async function loadConflictHandler(file: string, primaryKey: string): Promise<ConflictStrategy> {
  const url = pathToFileURL(resolvePath(file)).href;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(url)) as Record<string, unknown>;
  } catch (err) {
    throw new P2PSyncError(
      'E_CONFLICT_HANDLER',
      `--conflict-handler ${file}: cannot load the module: ${(err as Error)?.message ?? String(err)}`,
      { file },
      { cause: err },
    );
  }
  const candidate = (mod.conflictHandler ?? mod.default) as Partial<RxConflictHandlerLike> | undefined;
  if (
    typeof candidate !== 'object' ||
    candidate === null ||
    typeof candidate.isEqual !== 'function' ||
    typeof candidate.resolve !== 'function'
  ) {
    throw new P2PSyncError(
      'E_CONFLICT_HANDLER',
      `--conflict-handler ${file}: export an object with isEqual(a, b, context) and resolve(input, context) functions, as the default export or as "conflictHandler"`,
      { file },
    );
  }
  return handlerStrategy(candidate as RxConflictHandlerLike, file, primaryKey);
}

/** Wraps a handler object as a strategy (exported for tests and embedding). */
export function handlerStrategy(handler: RxConflictHandlerLike, file: string, primaryKey: string): ConflictStrategy {
  const rules = { primaryKey, maxDepth: DEFAULT_LIMITS.maxDocDepth, maxKeyLength: DEFAULT_LIMITS.maxKeyLength };
  const fail = (id: string, why: string, cause?: unknown): P2PSyncError =>
    new P2PSyncError(
      'E_CONFLICT_HANDLER',
      `--conflict-handler ${file}: ${why} (document "${id}")`,
      { file, id },
      cause === undefined ? {} : { cause },
    );
  const equal = (a: DocState, b: DocState, id: string): boolean => {
    let r: unknown;
    try {
      r = handler.isEqual(copy(a), copy(b), EQUAL_CONTEXT);
    } catch (err) {
      throw fail(id, `isEqual threw: ${(err as Error)?.message ?? String(err)}`, err);
    }
    if (typeof r !== 'boolean')
      throw fail(id, `isEqual returned ${describe(r)}, not a boolean (is it async? RxDB's isEqual is synchronous)`);
    return r;
  };
  return {
    name: `handler:${file}`,
    isEqual: docEquals,
    async resolve(input: ConflictInput): Promise<DocState> {
      const id = input.newDocumentState[primaryKey] as string;
      if (equal(input.newDocumentState, input.realMasterState, id)) return input.realMasterState;
      let out: unknown;
      try {
        out = await handler.resolve(
          {
            newDocumentState: copy(input.newDocumentState),
            realMasterState: copy(input.realMasterState),
            ...(input.assumedMasterState ? { assumedMasterState: copy(input.assumedMasterState) } : {}),
          },
          RESOLVE_CONTEXT,
        );
      } catch (err) {
        throw fail(id, `resolve threw: ${(err as Error)?.message ?? String(err)}`, err);
      }
      let doc: unknown;
      try {
        // Plain JSON only, as it would travel: functions and undefined members go, cycles and BigInts fail.
        const text = JSON.stringify(out);
        doc = text === undefined ? undefined : JSON.parse(text);
      } catch (err) {
        throw fail(id, `resolve returned something that is not JSON: ${(err as Error).message}`, err);
      }
      const checked = checkDoc(doc, rules);
      if (typeof checked === 'string') throw fail(id, `resolve returned ${describe(out)}, not a document: ${checked}`);
      if (checked[primaryKey] !== id)
        throw fail(id, `resolve returned a document with ${primaryKey} ${JSON.stringify(checked[primaryKey])}`);
      return checked;
    },
    discarded(input: ConflictInput, resolved: DocState): Discarded[] {
      // Only the handler knows what its result contains: an input it does not call equal to the result is kept.
      const id = input.newDocumentState[primaryKey] as string;
      const out: Discarded[] = [];
      if (!docEquals(resolved, input.newDocumentState) && !equal(resolved, input.newDocumentState, id))
        out.push({ side: 'local' });
      if (!docEquals(resolved, input.realMasterState) && !equal(resolved, input.realMasterState, id))
        out.push({ side: 'remote' });
      return out;
    },
  };
}

/** The handler gets its own copies: a handler that mutates its input must not change replication's states. */
function copy(doc: DocState): DocState {
  return structuredClone(doc);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Promise) return 'a promise';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${String(v).slice(0, 40)}`;
}

import { docEquals } from '../core/doc.js';
import { P2PSyncError } from '../core/errors.js';
import type { DocState } from '../core/types.js';

/** What the fork knows when the master refused one of its writes (docs/PROTOCOL.md §4.3). */
export interface ConflictInput {
  /** The fork's state it tried to write. */
  newDocumentState: DocState;
  /** The master state the fork based its write on; undefined if it had never seen the document on the master. */
  assumedMasterState: DocState | undefined;
  /** The master's current state, returned as the conflict. */
  realMasterState: DocState;
}

/**
 * A conflict strategy (RxDB's conflict handler split, docs/PROTOCOL.md §4.4). `isEqual` decides whether two states are the
 * same document state; `resolve` picks the state both sides should end with. For convergence:
 * `isEqual(x, x)` holds after a JSON round trip, `resolve` is deterministic and gives the same winner whichever side
 * computes it, and it returns one of its inputs or a merge that it would again pick over both.
 * Stores compare with strict deep equality (`docEquals`) for compare-and-set, so `isEqual` must not be looser.
 */
export interface ConflictStrategy {
  readonly name: string;
  isEqual(a: DocState, b: DocState): boolean;
  /** May be asynchronous (a user's handler); a rejection or a thrown error leaves the document as it was. */
  resolve(input: ConflictInput): DocState | Promise<DocState>;
  /**
   * Which inputs `resolved` discards, to be kept as versions. Default (`discardedBy`): every input that differs from
   * `resolved`. A strategy that knows better (a clean merge discards nothing) says so here.
   */
  discarded?(input: ConflictInput, resolved: DocState): Discarded[];
}

/** An input a resolution discarded, and (for a merge) the fields where it lost. */
export interface Discarded {
  side: 'local' | 'remote';
  fields?: string[];
}

/** A strategy whose `resolve` is synchronous (the built-in ones). */
export interface SyncConflictStrategy extends ConflictStrategy {
  resolve(input: ConflictInput): DocState;
}

/** The default of `ConflictStrategy.discarded`: each input the resolution is not equal to lost. */
export function discardedBy(strategy: ConflictStrategy, input: ConflictInput, resolved: DocState): Discarded[] {
  if (strategy.discarded) return strategy.discarded(input, resolved);
  const out: Discarded[] = [];
  if (!strategy.isEqual(resolved, input.newDocumentState)) out.push({ side: 'local' });
  if (!strategy.isEqual(resolved, input.realMasterState)) out.push({ side: 'remote' });
  return out;
}

export interface ConflictStrategyOptions {
  /** Field holding the timestamp for `lww` (default `updatedAt`). */
  lwwField?: string;
}

export type ConflictStrategyFactory = (options: ConflictStrategyOptions) => ConflictStrategy;

/** RxDB's default: the master's state wins, whatever the timestamps. */
export function masterWins(): SyncConflictStrategy {
  return {
    name: 'master',
    isEqual: docEquals,
    resolve: (input) => input.realMasterState,
  };
}

/**
 * Last write wins by a timestamp field: a number (ms since the epoch) or a string `Date.parse` understands (ISO
 * 8601). A missing or unreadable timestamp counts as the oldest. Equal timestamps are broken by comparing the
 * canonical JSON of both states (sorted keys), the larger wins, so both sides of a pair pick the same winner.
 * A delete is a tombstone carrying the last body: it wins only if its timestamp is newer.
 */
export function lastWriteWins(field = 'updatedAt'): SyncConflictStrategy {
  return {
    name: 'lww',
    isEqual: docEquals,
    resolve: ({ newDocumentState: mine, realMasterState: theirs }) => {
      const a = timestampOf(mine[field]);
      const b = timestampOf(theirs[field]);
      if (a !== b) return a > b ? mine : theirs;
      return canonicalJson(mine) > canonicalJson(theirs) ? mine : theirs;
    },
  };
}

/** A comparable time in ms; -Infinity when missing or unreadable. */
export function timestampOf(value: unknown): number {
  if (typeof value === 'number') return Number.isFinite(value) ? value : -Infinity;
  if (typeof value === 'string') {
    const t = Date.parse(value);
    return Number.isNaN(t) ? -Infinity : t;
  }
  return -Infinity;
}

/** JSON with object keys sorted at every level and `undefined` members left out: equal states, equal text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null) ?? 'null';
  if (Array.isArray(value)) return '[' + value.map((v) => canonicalJson(v === undefined ? null : v)).join(',') + ']';
  const rec = value as Record<string, unknown>;
  const keys = Object.keys(rec)
    .filter((k) => rec[k] !== undefined)
    .sort();
  return '{' + keys.map((k) => JSON.stringify(k) + ':' + canonicalJson(rec[k])).join(',') + '}';
}

/**
 * Named conflict strategies. `createConflictRegistry()` returns one with `master` and `lww`; register more to
 * make them available to `--conflict`. One registry per program (no module-global state).
 */
export class ConflictRegistry {
  private readonly factories = new Map<string, ConflictStrategyFactory>();

  register(name: string, factory: ConflictStrategyFactory): this {
    this.factories.set(name, factory);
    return this;
  }

  has(name: string): boolean {
    return this.factories.has(name);
  }

  names(): string[] {
    return [...this.factories.keys()];
  }

  /** Builds a strategy; throws `E_BAD_OPTION` with the known names for an unknown one. */
  create(name: string, options: ConflictStrategyOptions = {}): ConflictStrategy {
    const factory = this.factories.get(name);
    if (!factory) {
      throw new P2PSyncError(
        'E_BAD_OPTION',
        `unknown conflict strategy "${name}" (known: ${this.names().join(', ')})`,
        {
          option: 'conflict',
          value: name,
        },
      );
    }
    return factory(options);
  }
}

export function createConflictRegistry(): ConflictRegistry {
  return new ConflictRegistry()
    .register('master', () => masterWins())
    .register('lww', (o) => lastWriteWins(o.lwwField ?? 'updatedAt'));
}

/** Which input a resolution picked, for `conflict` events. */
export function winnerOf(
  resolved: DocState,
  local: DocState,
  remote: DocState,
  isEqual: (a: DocState, b: DocState) => boolean,
): 'local' | 'remote' | 'merged' {
  if (resolved === remote || isEqual(resolved, remote)) return 'remote';
  if (resolved === local || isEqual(resolved, local)) return 'local';
  return 'merged';
}

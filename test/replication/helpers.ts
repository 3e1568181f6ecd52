import type { Observable } from 'rxjs';
import type { PeerLink } from '../../src/core/link.js';
import type { SyncEvent } from '../../src/core/events.js';
import type { DocState } from '../../src/core/types.js';
import type { PeerStateStore, Store } from '../../src/core/store.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { createMemoryLinkPair, type MemoryLink, type Pace } from '../../src/transport/memory-link.js';
import { canonicalJson, masterWins, type ConflictStrategy } from '../../src/replication/conflict.js';
import { isMaster } from '../../src/replication/master-rule.js';
import { replicate, type PeerReplication, type ReplicationOptions } from '../../src/replication/peer-replication.js';
import { doc } from '../helpers/doc.js';

/** Two tokens where `MASTER_TOKEN` is master of `FORK_TOKEN` (docs/PROTOCOL.md §2.3 test vector). */
export const MASTER_TOKEN = 'aaaaaaaaaa';
export const FORK_TOKEN = 'bbbbbbbbbb';
if (!isMaster(MASTER_TOKEN, FORK_TOKEN)) throw new Error('test vector changed');

export function store(token?: string): MemoryStore {
  return new MemoryStore(token ? { storageToken: token } : {});
}

/** Re-exported for the tests that import it from here. */
export { doc };

export async function put(s: Store, ...docs: DocState[]): Promise<void> {
  const current = await s.get(docs.map((d) => d.id as string));
  const conflicts = await s.bulkWrite(
    docs.map((d) => ({ document: d, expected: current.get(d.id as string) ?? null })),
    { kind: 'local' },
  );
  if (conflicts.length > 0) throw new Error('local write conflicted');
}

export async function seed(
  s: Store,
  n: number,
  prefix = 'd',
  fields: (i: number) => Record<string, unknown> = (i) => ({ n: i }),
): Promise<void> {
  const docs: DocState[] = [];
  for (let i = 0; i < n; i++) docs.push(doc(`${prefix}-${String(i).padStart(6, '0')}`, fields(i)));
  for (let i = 0; i < docs.length; i += 5000)
    await s.bulkWrite(
      docs.slice(i, i + 5000).map((d) => ({ document: d, expected: null })),
      { kind: 'local' },
    );
}

/** Every document including tombstones, sorted by id, as canonical JSON: equal digests mean equal content. */
export async function digest(s: Store): Promise<string> {
  const page = await s.changesSince(null, Number.MAX_SAFE_INTEGER);
  const docs = [...page.documents].sort((a, b) => ((a.id as string) < (b.id as string) ? -1 : 1));
  return canonicalJson(docs);
}

export interface Side {
  store: Store;
  rep: PeerReplication;
  events: SyncEvent[];
}

export interface Pair {
  a: Side;
  b: Side;
  linkA: PeerLink;
  linkB: PeerLink;
  close(): Promise<void>;
}

export type SideOptions = Partial<Omit<ReplicationOptions, 'store' | 'link'>>;

export function side(s: Store & PeerStateStore, link: PeerLink, options: SideOptions = {}): Side {
  const events: SyncEvent[] = [];
  const rep = replicate({
    store: s,
    meta: s,
    link,
    topic: 'topic-one',
    conflict: masterWins(),
    batchSize: 50,
    retryDelayMs: 50,
    emit: (e) => events.push(e),
    ...options,
  });
  return { store: s, rep, events };
}

/** Replicates two stores over a fresh in-memory link pair. */
export function connect(
  storeA: Store & PeerStateStore,
  storeB: Store & PeerStateStore,
  a: SideOptions = {},
  b: SideOptions = a,
  linkPair: [PeerLink, PeerLink] = createMemoryLinkPair('peer-a', 'peer-b'),
): Pair {
  const [linkA, linkB] = linkPair;
  const sa = side(storeA, linkA, a);
  const sb = side(storeB, linkB, b);
  return {
    a: sa,
    b: sb,
    linkA,
    linkB,
    async close() {
      await Promise.all([sa.rep.close(), sb.rep.close()]);
      linkA.close();
      linkB.close();
    },
  };
}

/**
 * Resolves once `check()` holds, re-checking whenever a replication changes state or a store commits; rejects
 * with the description after `timeoutMs` (a safety net, not a synchronisation method).
 */
export function until(
  check: () => boolean | Promise<boolean>,
  reps: PeerReplication[],
  stores: Store[],
  what: string,
  timeoutMs = 10_000,
  triggers: Array<Observable<unknown>> = [],
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let done = false;
    let checking = false;
    let again = false;
    const subs = [...stores.map((s) => s.changes$), ...triggers].map((o) => o.subscribe(() => void probe()));
    const timer = setTimeout(() => finish(new Error(`timed out waiting for ${what}`)), timeoutMs);
    function finish(err?: Error): void {
      if (done) return;
      done = true;
      clearTimeout(timer);
      for (const s of subs) s.unsubscribe();
      if (err) reject(err);
      else resolve();
    }
    async function probe(): Promise<void> {
      if (done) return;
      if (checking) {
        again = true;
        return;
      }
      checking = true;
      try {
        do {
          again = false;
          if (await check()) return finish();
        } while (again && !done);
      } catch (err) {
        finish(err as Error);
      } finally {
        checking = false;
      }
    }
    for (const r of reps) r.onStateChange(() => void probe());
    void probe();
  });
}

/** Waits until every replication reports idle. */
export function allIdle(reps: PeerReplication[], stores: Store[] = [], timeoutMs = 10_000): Promise<void> {
  return until(() => reps.every((r) => r.isIdle()), reps, stores, 'all replications idle', timeoutMs);
}

/** Waits until all stores have the same content and every replication is idle. */
export async function converged(reps: PeerReplication[], stores: Store[], timeoutMs = 10_000): Promise<void> {
  await until(
    async () => {
      if (!reps.every((r) => r.isIdle())) return false;
      const ds = await Promise.all(stores.map(digest));
      return ds.every((d) => d === ds[0]) && reps.every((r) => r.isIdle());
    },
    reps,
    stores,
    'convergence',
    timeoutMs,
  );
}

export const strategyOf = (s: ConflictStrategy): SideOptions => ({ conflict: s });

/**
 * A link pair whose delivery can be held back per direction (`hold()` / `release()`), for flow-control tests.
 * `bufferedAmount()` counts the characters sent and not yet delivered (held ones included), like a data channel
 * whose peer does not read; each turn delivers at most 512 KiB, like a network with finite bandwidth.
 */
export function createHeldLinkPair(aId = 'peer-a', bId = 'peer-b'): [MemoryLink, MemoryLink] {
  return createMemoryLinkPair(aId, bId, { pace: bandwidth(512 * 1024) });
}

/** Delivers frames until `chars` characters went out this turn (at least one frame). */
function bandwidth(chars: number): Pace {
  return (waiting) => {
    let n = 0;
    for (let budget = chars; n < waiting.length && budget > 0; n++) budget -= waiting[n]!.length;
    return n;
  };
}

/** A hand-driven peer on the far end of a link: answers `token`, records everything else, sends raw frames. */
export class RawPeer {
  readonly requests: Array<{ id: string; method: string; params: unknown[] }> = [];
  readonly stream: unknown[] = [];
  readonly responses = new Map<string, { result?: unknown; error?: unknown }>();
  private readonly waiters: Array<() => void> = [];
  private counter = 0;
  /** Answers requests as they arrive when it returns something. */
  autoAnswer: ((request: { id: string; method: string; params: unknown[] }) => unknown) | undefined;
  private readonly chunks = new Map<string, string[]>();

  constructor(
    readonly link: PeerLink,
    readonly token: string,
  ) {
    link.onFrame((f) => this.receive(f));
  }

  send(frame: string): void {
    this.link.send(frame);
  }

  sendJson(value: unknown): void {
    this.link.send(JSON.stringify(value));
  }

  /** Sends a request and waits for its response. */
  async request(method: string, params: unknown[]): Promise<{ result?: unknown; error?: unknown }> {
    const id = `raw|${this.counter++}`;
    this.sendJson({ id, method, params });
    await this.waitFor(() => this.responses.has(id), `response to ${method}`);
    return this.responses.get(id)!;
  }

  /** Waits for the other side's next request of `method` (counting from `from`). */
  async nextRequest(method: string, from = 0): Promise<{ id: string; method: string; params: unknown[] }> {
    let found: { id: string; method: string; params: unknown[] } | undefined;
    await this.waitFor(() => {
      found = this.requests.slice(from).find((r) => r.method === method);
      return found !== undefined;
    }, `a ${method} request`);
    return found!;
  }

  waitFor(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (check()) return resolve();
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
      const probe = (): void => {
        if (check()) {
          clearTimeout(timer);
          resolve();
        } else this.waiters.push(probe);
      };
      this.waiters.push(probe);
    });
  }

  private receive(frame: string): void {
    let msg = JSON.parse(frame) as Record<string, unknown>;
    if (msg.chunk) {
      const c = msg.chunk as { id: string; index: number; total: number; data: string };
      const parts = this.chunks.get(c.id) ?? [];
      parts[c.index] = c.data;
      this.chunks.set(c.id, parts);
      if (parts.filter((p) => p !== undefined).length < c.total) return;
      this.chunks.delete(c.id);
      msg = JSON.parse(parts.join('')) as Record<string, unknown>;
    }
    if (typeof msg.method === 'string') {
      if (msg.method === 'token') this.sendJson({ id: msg.id, result: this.token });
      else {
        const request = { id: msg.id as string, method: msg.method, params: msg.params as unknown[] };
        this.requests.push(request);
        const answer = this.autoAnswer?.(request);
        if (answer !== undefined) this.sendJson({ id: request.id, result: answer });
      }
    } else if (msg.id === 'masterChangeStream$') {
      this.stream.push(msg.result);
    } else {
      this.responses.set(msg.id as string, { result: msg.result, error: msg.error });
    }
    for (const w of this.waiters.splice(0)) w();
  }
}

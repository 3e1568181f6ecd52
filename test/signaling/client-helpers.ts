// Shared helpers of the signaling client tests (client*.test.ts). Everything waits for events, with generous
// timeouts for a loaded 2-core machine; nothing sleeps as a means of synchronisation.
import { createServer } from 'node:net';
import type { SyncEvent } from '../../src/core/events.js';

export const EVENT_TIMEOUT_MS = 15_000;

/** Rejects with `label` when `promise` has not settled within `ms`. */
export function within<T>(promise: Promise<T>, label: string, ms = EVENT_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${label}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Collects emitted events and lets a test wait for the next (or an already seen) matching one. */
export class EventLog {
  readonly events: SyncEvent[] = [];
  private readonly waiters = new Set<{
    pred: (e: SyncEvent) => boolean;
    resolve: (e: SyncEvent) => void;
    from: number;
  }>();

  readonly emit = (event: SyncEvent): void => {
    this.events.push(event);
    for (const waiter of [...this.waiters]) {
      if (waiter.pred(event)) {
        this.waiters.delete(waiter);
        waiter.resolve(event);
      }
    }
  };

  /** The first event matching `pred` at index `from` or later, waiting for it if needed. */
  waitFor<E extends SyncEvent['event']>(
    name: E,
    pred: (e: Extract<SyncEvent, { event: E }>) => boolean = () => true,
    from = 0,
    ms = EVENT_TIMEOUT_MS,
  ): Promise<Extract<SyncEvent, { event: E }>> {
    const match = (e: SyncEvent): boolean => e.event === name && pred(e as Extract<SyncEvent, { event: E }>);
    const seen = this.events.slice(from).find(match);
    if (seen) return Promise.resolve(seen as Extract<SyncEvent, { event: E }>);
    return within(
      new Promise<Extract<SyncEvent, { event: E }>>((resolve) => {
        this.waiters.add({ pred: match, resolve: resolve as (e: SyncEvent) => void, from });
      }),
      `event ${name}`,
      ms,
    );
  }

  count(name: SyncEvent['event']): number {
    return this.events.filter((e) => e.event === name).length;
  }
}

/**
 * Waits until a subscription (onPeers, onStatus, ...) delivers a value matching `pred`. `current` is checked
 * first so a value delivered before the call is not missed.
 */
export function until<T>(
  subscribe: (handler: (value: T) => void) => () => void,
  pred: (value: T) => boolean,
  label: string,
  current?: () => T,
): Promise<T> {
  return within(
    new Promise<T>((resolve) => {
      if (current) {
        const now = current();
        if (pred(now)) return resolve(now);
      }
      const off = subscribe((value) => {
        if (!pred(value)) return;
        off();
        resolve(value);
      });
    }),
    label,
  );
}

/** A loopback port that was free a moment ago (for tests that need to restart a server on the same port). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== 'object' || address === null) throw new Error('no address');
  return address.port;
}

/** Runs registered cleanups in reverse order; call `run()` from afterEach. */
export class Cleanup {
  private readonly tasks: Array<() => unknown> = [];
  add(task: () => unknown): void {
    this.tasks.push(task);
  }
  async run(): Promise<void> {
    const tasks = this.tasks.splice(0).reverse();
    for (const task of tasks) {
      try {
        await task();
      } catch {
        // Cleanup of something a test already closed or that failed to start.
      }
    }
  }
}

export const sameMembers = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && [...a].sort().join(',') === [...b].sort().join(',');

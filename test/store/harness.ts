import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SyncEvent } from '../../src/core/events.js';
import type { Store } from '../../src/core/store.js';
import { openStore, type FileStoreOptions, type OpenedStore } from '../../src/store/open.js';
import type { StoreHarness } from './contract.js';
import { pollUntil } from '../helpers/wait.js';

/** A temp directory that `cleanup()` removes. */
export async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'p2psync-store-'));
}

/** A contract harness over one file in a fresh temp dir; every open() reopens the same file. */
export async function fileHarness(
  fileName: string,
  options: Partial<FileStoreOptions> = {},
): Promise<StoreHarness & { path: string }> {
  const dir = await tempDir();
  const path = join(dir, fileName);
  const opened: Store[] = [];
  return {
    path,
    persistent: true,
    async open(extra = {}) {
      const s = await openStore({ path, ...options, ...extra });
      opened.push(s);
      return s;
    },
    async cleanup() {
      for (const s of opened.splice(0)) await s.close().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Opens stores in a temp dir and closes them all on cleanup. */
export class StoreFixture {
  readonly stores: OpenedStore[] = [];
  constructor(readonly dir: string) {}

  static async create(): Promise<StoreFixture> {
    return new StoreFixture(await tempDir());
  }

  file(name: string): string {
    return join(this.dir, name);
  }

  async open(options: FileStoreOptions): Promise<OpenedStore> {
    const s = await openStore(options);
    this.stores.push(s);
    return s;
  }

  async cleanup(): Promise<void> {
    for (const s of this.stores.splice(0)) await s.close().catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Collects store events (`emit`) and lets a test wait for one. */
export class EventLog {
  readonly events: SyncEvent[] = [];
  private waiters: Array<{ pred: (e: SyncEvent) => boolean; resolve: (e: SyncEvent) => void }> = [];
  readonly push = (e: SyncEvent): void => {
    this.events.push(e);
    this.waiters = this.waiters.filter((w) => (w.pred(e) ? (w.resolve(e), false) : true));
  };

  /** The first event (seen already or future, after index `from`) matching `pred`; rejects after `timeoutMs`. */
  waitFor(pred: (e: SyncEvent) => boolean, from = 0, timeoutMs = 10_000): Promise<SyncEvent> {
    const seen = this.events.slice(from).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no matching event within ${timeoutMs} ms; got ${JSON.stringify(this.events)}`)),
        timeoutMs,
      );
      this.waiters.push({
        pred,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      });
    });
  }
}

/** Polls `check` until it returns true (for state that has no event), failing after `timeoutMs`. */
export function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  return pollUntil(check, { timeoutMs, intervalMs: 10 });
}

import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { debuglog } from 'node:util';

const debug = debuglog('p2psync');

export interface WatcherOptions {
  /** Use fs.watch on the file's directory (files are often replaced by rename, so the file itself won't do). */
  fsWatch: boolean;
  /** Period of the fallback check; it works where fs.watch does not (network mounts, some containers). */
  pollIntervalMs: number;
  /** Quiet time after the last notification before checking, so a writer can finish. */
  debounceMs: number;
}

/**
 * Tells its owner when the user's file may have changed: fs.watch events for the file's name in its directory
 * (debounced) and a periodic tick. It does not decide whether anything changed; the owner compares fingerprints.
 */
export class FileWatcher {
  private watcher: FSWatcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly path: string,
    private readonly options: WatcherOptions,
    private readonly onCheck: () => void,
  ) {}

  /** True while a notification is waiting out its debounce time. */
  get pending(): boolean {
    return this.debounce !== undefined;
  }

  start(): void {
    const name = basename(this.path);
    if (this.options.fsWatch) {
      try {
        this.watcher = watch(dirname(this.path), { persistent: false }, (_event, file) => {
          // Some platforms omit the name; then any change in the directory may be ours.
          if (file === null || file === name) this.notify();
        });
        this.watcher.on('error', (err) => {
          debug('fs.watch failed, relying on the periodic check: %s', err.message);
          this.watcher?.close();
          this.watcher = undefined;
        });
      } catch (err) {
        debug('fs.watch unavailable, relying on the periodic check: %s', (err as Error).message);
      }
    }
    this.poll = setInterval(() => this.onCheck(), this.options.pollIntervalMs);
    this.poll.unref();
  }

  /** Schedules a check after the debounce time; repeated notifications push it back. */
  notify(): void {
    if (this.stopped) return;
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.onCheck();
    }, this.options.debounceMs);
  }

  /** Cancels a pending debounced check (the owner is checking right now anyway). */
  cancelPending(): void {
    clearTimeout(this.debounce);
    this.debounce = undefined;
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    this.watcher = undefined;
    clearInterval(this.poll);
    clearTimeout(this.debounce);
    this.debounce = undefined;
  }
}

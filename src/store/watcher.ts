import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { debuglog } from 'node:util';

const debug = debuglog('p2psync');

export interface WatcherOptions {
  /** Use fs.watch on the file's directory (files are often replaced by rename, so the file itself won't do). */
  fsWatch: boolean;
  /** Period of the fallback check, run only where fs.watch is off or fails (network mounts, some containers). */
  pollIntervalMs: number;
  /** Quiet time after the last notification before checking, so a writer can finish. */
  debounceMs: number;
}

/**
 * Tells its owner when the user's file may have changed: fs.watch events for the file's name in its directory
 * (debounced), or a periodic tick where watching is off or fails. It does not decide whether anything changed; the owner compares fingerprints.
 * `onCheck(inPlace)` says whether the file may have been written in place (a writer may still be busy) rather
 * than only replaced by rename (complete at once); the periodic tick cannot tell and says true.
 */
export class FileWatcher {
  private watcher: FSWatcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private inPlace = false;
  private stopped = false;

  constructor(
    private readonly path: string,
    private readonly options: WatcherOptions,
    private readonly onCheck: (inPlace: boolean) => void,
  ) {}

  /** True while a notification is waiting out its debounce time. */
  get pending(): boolean {
    return this.debounce !== undefined;
  }

  start(): void {
    const name = basename(this.path);
    if (this.options.fsWatch) {
      try {
        this.watcher = watch(dirname(this.path), { persistent: false }, (event, file) => {
          // Some platforms omit the name; then any change in the directory may be ours.
          if (file === null || file === name) this.notify(file === null || event === 'change');
        });
        this.watcher.on('error', (err) => {
          debug('fs.watch failed, relying on the periodic check: %s', err.message);
          this.watcher?.close();
          this.watcher = undefined;
          this.startPolling();
        });
        return;
      } catch (err) {
        debug('fs.watch unavailable, relying on the periodic check: %s', (err as Error).message);
      }
    }
    this.startPolling();
  }

  private startPolling(): void {
    if (this.poll || this.stopped) return;
    this.poll = setInterval(() => this.onCheck(true), this.options.pollIntervalMs);
    this.poll.unref();
  }

  /** Schedules a check after the debounce time; repeated notifications push it back. */
  notify(inPlace = true): void {
    if (this.stopped) return;
    this.inPlace ||= inPlace;
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      const inPlace = this.inPlace;
      this.cancelPending();
      this.onCheck(inPlace);
    }, this.options.debounceMs);
  }

  /** Cancels a pending debounced check (the owner is checking right now anyway). */
  cancelPending(): void {
    clearTimeout(this.debounce);
    this.debounce = undefined;
    this.inPlace = false;
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    this.watcher = undefined;
    clearInterval(this.poll);
    this.cancelPending();
  }
}

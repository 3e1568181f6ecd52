import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { debuglog } from 'node:util';

const debug = debuglog('p2psync');

export interface WatcherOptions {
  /** Use fs.watch on the file's directory (files are often replaced by rename, so the file itself won't do). */
  fsWatch: boolean;
  /** Period of the fallback check, run only where fs.watch is off or fails (network mounts, some containers). */
  pollIntervalMs: number;
  /**
   * After a check, further notifications within this time wait for its end and make one more check: a writer
   * busy for a while costs one check per period, not one per write.
   */
  debounceMs: number;
}

/**
 * Tells its owner when the user's file may have changed: fs.watch events for the file's name in its directory, or a
 * periodic tick where watching is off or fails. It does not decide whether anything changed; the owner compares
 * fingerprints. `onCheck(inPlace)` says whether the file may have been written in place (a writer may still be
 * busy) rather than only replaced by rename (complete at once); the periodic tick cannot tell and says true.
 *
 * Leading edge, then throttled: the first notification after a quiet spell is checked at once (on the next turn of
 * the event loop, so that the events of one write are one check), because a live change should reach the peers
 * without waiting; notifications in the `debounceMs` after it are coalesced into one check at its end. A file
 * caught half written in place is the owner's to settle (it waits for a recent in-place write to end).
 */
export class FileWatcher {
  private watcher: FSWatcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  /** The leading check, scheduled for the next turn of the event loop. */
  private immediate: NodeJS.Immediate | undefined;
  /** The throttle window after a check; `trailing` asks for a check at its end. */
  private window: NodeJS.Timeout | undefined;
  private trailing = false;
  private inPlace = false;
  private stopped = false;

  constructor(
    private readonly path: string,
    private readonly options: WatcherOptions,
    private readonly onCheck: (inPlace: boolean) => void,
  ) {}

  /** True while a notification waits for its check. */
  get pending(): boolean {
    return this.immediate !== undefined || this.trailing;
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

  /** Asks for a check: at once after a quiet spell, else at the end of the current throttle window. */
  notify(inPlace = true): void {
    if (this.stopped) return;
    this.inPlace ||= inPlace;
    if (this.immediate) return;
    if (this.window) {
      this.trailing = true;
      return;
    }
    this.immediate = setImmediate(() => {
      this.immediate = undefined;
      this.check();
    });
  }

  /** Cancels a pending check (the owner is checking right now anyway); a throttle window keeps running. */
  cancelPending(): void {
    clearImmediate(this.immediate);
    this.immediate = undefined;
    this.trailing = false;
    this.inPlace = false;
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    this.watcher = undefined;
    clearInterval(this.poll);
    this.cancelPending();
    clearTimeout(this.window);
    this.window = undefined;
  }

  private check(): void {
    const inPlace = this.inPlace;
    this.cancelPending();
    this.window = setTimeout(() => {
      this.window = undefined;
      if (this.trailing && !this.stopped) this.check();
    }, this.options.debounceMs);
    this.onCheck(inPlace);
  }
}

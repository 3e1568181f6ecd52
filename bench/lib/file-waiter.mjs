// Waits until a store file contains a given document id, as a user watching the file would see it. The file may
// be appended to or replaced by rename, so the directory is watched and the file is also polled (stat only) in
// case a watch event is missed; the content is read only when the file's stat changed.
import { watch, statSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';

/** The fallback poll: fine enough for latencies of tens of milliseconds, cheap (one stat per tick). */
const POLL_MS = 5;

export class FileWaiter {
  constructor(path) {
    this.path = path;
    this.lastStat = '';
    this.content = '';
    this.pending = [];
    this.watcher = watch(dirname(path), () => this.check());
    this.timer = setInterval(() => this.check(), POLL_MS);
  }

  check() {
    if (this.pending.length === 0) return;
    let key;
    try {
      const st = statSync(this.path);
      key = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      return;
    }
    if (key === this.lastStat) return;
    const t = performance.now();
    try {
      this.content = readFileSync(this.path, 'utf8');
    } catch {
      return;
    }
    this.lastStat = key;
    this.pending = this.pending.filter((p) => (this.content.includes(p.needle) ? (p.resolve(t), false) : true));
  }

  /** Resolves with the runner-clock time at which the file was first seen holding `"id"` (the quoted id). */
  waitForId(id, timeoutMs = 10_000) {
    return new Promise((resolve, reject) => {
      const entry = { needle: JSON.stringify(id), resolve: undefined };
      const timer = setTimeout(() => {
        this.pending = this.pending.filter((p) => p !== entry);
        reject(new Error(`${id} did not reach ${this.path} within ${timeoutMs} ms`));
      }, timeoutMs);
      entry.resolve = (t) => {
        clearTimeout(timer);
        resolve(t);
      };
      this.pending.push(entry);
      this.check();
      if (this.pending.includes(entry) && this.content.includes(entry.needle)) {
        this.pending = this.pending.filter((p) => p !== entry);
        entry.resolve(performance.now());
      }
    });
  }

  close() {
    this.watcher.close();
    clearInterval(this.timer);
  }
}

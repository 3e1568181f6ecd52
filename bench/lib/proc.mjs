// Child processes for the benchmarks: each one runs in its own process group, prints NDJSON events on stdout
// (timestamped on arrival with the runner's monotonic clock) and has its peak RSS sampled from /proc while it runs.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/** How often VmHWM is sampled. It is a high-water mark, so sampling only has to happen before the exit. */
const RSS_POLL_MS = 100;

/** Every process still running, so the runner can clean up on errors and on Ctrl-C. */
const running = new Set();

/** Peak resident set size of a process in bytes (Linux VmHWM), or undefined once the process is gone. */
export function readPeakRss(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(status);
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A spawned `node SCRIPT ...args` whose stdout lines are parsed as JSON events. Each event gets `_t`, the
 * runner's `performance.now()` when the line arrived, so timings from different processes share one clock.
 */
export class Proc {
  /** `wrap`: a command the process runs under (e.g. `['strace', '-c', ...]`), which then runs `node`. */
  constructor(label, script, args, { cwd, env, nodeArgs = [], wrap = [] } = {}) {
    this.label = label;
    this.events = [];
    this.stderr = '';
    this.peakRss = 0;
    this.waiters = [];
    this.lineListeners = [];
    this.startedAt = performance.now();
    const argv = [...wrap, process.execPath, ...nodeArgs, script, ...args];
    this.child = spawn(argv[0], argv.slice(1), {
      cwd,
      env: { ...process.env, NO_COLOR: '1', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
      // Own process group so stop() reaches anything the process spawned.
      detached: true,
    });
    running.add(this);
    let buf = '';
    this.child.stdout.setEncoding('utf8').on('data', (chunk) => {
      const t = performance.now();
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim()) this.push(parseLine(line), t);
      }
    });
    this.child.stderr.setEncoding('utf8').on('data', (d) => {
      // Keep the tail only: a chatty process must not grow the runner's memory.
      this.stderr = (this.stderr + d).slice(-20_000);
    });
    this.child.stdin.on('error', () => {});
    this.sampleRss();
    this.rssTimer = setInterval(() => this.sampleRss(), RSS_POLL_MS);
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        clearInterval(this.rssTimer);
        running.delete(this);
        this.exitStatus = { code, signal };
        resolve(this.exitStatus);
      });
    });
  }

  sampleRss() {
    const rss = readPeakRss(this.child.pid);
    if (rss !== undefined && rss > this.peakRss) this.peakRss = rss;
  }

  push(ev, t) {
    ev._t = t;
    this.events.push(ev);
    for (const fn of this.lineListeners) fn(ev);
    this.waiters = this.waiters.filter((w) => (w.pred(ev) ? (w.resolve(ev), false) : true));
  }

  /** Calls `fn(event)` for every event from now on. */
  onEvent(fn) {
    this.lineListeners.push(fn);
  }

  /** Resolves with the first event (already seen or future) matching `pred` (a function or an event name). */
  waitFor(pred, timeoutMs = 30_000, what = undefined) {
    const p = typeof pred === 'string' ? (e) => e.event === pred : pred;
    const seen = this.events.find(p);
    if (seen) return Promise.resolve(seen);
    const desc = what ?? (typeof pred === 'string' ? `event "${pred}"` : 'an event');
    return new Promise((resolve, reject) => {
      const waiter = { pred: p, resolve: undefined };
      const fail = (why) => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(
          new Error(
            `${this.label}: ${why} while waiting for ${desc}; last events: ${this.lastEvents()}; stderr: ${this.stderr.slice(-1500)}`,
          ),
        );
      };
      const timer = setTimeout(() => fail(`timed out after ${timeoutMs} ms`), timeoutMs);
      waiter.resolve = (e) => {
        clearTimeout(timer);
        resolve(e);
      };
      this.waiters.push(waiter);
      void this.exited.then((st) => {
        if (this.waiters.includes(waiter)) {
          clearTimeout(timer);
          fail(`exited (code ${st.code}, signal ${st.signal})`);
        }
      });
    });
  }

  lastEvents(n = 6) {
    return this.events
      .slice(-n)
      .map((e) => JSON.stringify(e).slice(0, 200))
      .join(' | ');
  }

  /** Writes one NDJSON command to the process's stdin. */
  send(obj) {
    this.child.stdin.write(JSON.stringify(obj) + '\n');
  }

  get alive() {
    return this.exitStatus === undefined;
  }

  kill(signal = 'SIGTERM') {
    if (!this.alive) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      /* already gone */
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`. Samples RSS one last time first. */
  async stop(graceMs = 5_000) {
    if (!this.alive) return this.exitStatus;
    this.sampleRss();
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
    const st = await this.exited;
    clearTimeout(timer);
    return st;
  }
}

function parseLine(line) {
  try {
    const ev = JSON.parse(line);
    return ev && typeof ev === 'object' && !Array.isArray(ev) ? ev : { event: '__non_object__', line };
  } catch {
    return { event: '__non_json__', line };
  }
}

/** Stops every process still running (used between scenarios and on exit). */
export async function stopAll() {
  await Promise.all([...running].map((p) => p.stop(2_000)));
}

/** Synchronous last-resort cleanup for process exit: SIGKILL every remaining process group. */
export function killAllSync() {
  for (const p of running) p.kill('SIGKILL');
}

/** Runs `node SCRIPT ...args` to completion and returns {code, stdout, stderr, peakRss, ms}. */
export async function runToEnd(label, script, args, opts = {}) {
  const p = new Proc(label, script, args, opts);
  let stdout = '';
  p.child.stdout.on('data', (d) => (stdout += d));
  if (opts.input !== undefined) p.child.stdin.end(opts.input);
  else p.child.stdin.end();
  const timer = opts.timeoutMs ? setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs) : undefined;
  const st = await p.exited;
  clearTimeout(timer);
  return { ...st, stdout, stderr: p.stderr, events: p.events, peakRss: p.peakRss, ms: performance.now() - p.startedAt };
}

/** Takes every child process down on Ctrl-C, SIGTERM and any exit: they run in process groups of their own. */
export function killChildrenOnExit() {
  process.on('SIGINT', () => {
    killAllSync();
    process.exit(130);
  });
  process.on('SIGTERM', () => {
    killAllSync();
    process.exit(143);
  });
  process.on('exit', killAllSync);
}

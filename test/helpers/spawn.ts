import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/p2psync.js', import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  input?: string;
  timeoutMs?: number;
  /** Run inside this network namespace (`ip netns exec NAME node ...`; system tests only). */
  netns?: string;
  /** A command that runs node in another context, e.g. `['ip', 'netns', 'exec', NAME]` (it must exec, not fork). */
  prefix?: string[];
}

/** The command line for `node bin/p2psync.js ...args`, inside a network namespace or behind a prefix when asked. */
function command(args: string[], opts: RunOptions): [string, string[]] {
  const prefix = opts.prefix ?? (opts.netns ? ['ip', 'netns', 'exec', opts.netns] : []);
  const [cmd, ...rest] = [...prefix, process.execPath, BIN, ...args];
  return [cmd!, rest];
}

function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  // Keep the child's environment free of our own P2PSYNC_* settings and colours so each test says what it means.
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('P2PSYNC_')) env[k] = v;
  env.NO_COLOR = '1';
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Runs `node bin/p2psync.js ...args` to completion. */
export function runCli(args: string[], opts: RunOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(...command(args, opts), { cwd: opts.cwd, env: childEnv(opts.env), stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

export type CliEvent = Record<string, unknown> & { event: string };

/**
 * A long-running `p2psync` process (own process group) whose `--json` stdout is parsed into events.
 * Call `stop()` or `kill()` in afterEach; `killAll()` ends every process still running.
 */
export class CliProcess {
  readonly child: ChildProcess;
  readonly events: CliEvent[] = [];
  stderr = '';
  private waiters: Array<{ pred: (e: CliEvent) => boolean; resolve: (e: CliEvent) => void }> = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private static running = new Set<CliProcess>();

  constructor(args: string[], opts: RunOptions = {}) {
    this.child = spawn(...command(args, opts), {
      cwd: opts.cwd,
      env: childEnv(opts.env),
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    CliProcess.running.add(this);
    let buf = '';
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.trim()) continue;
        let ev: CliEvent;
        try {
          ev = JSON.parse(line) as CliEvent;
        } catch {
          ev = { event: '__non_json__', line };
        }
        this.events.push(ev);
        this.waiters = this.waiters.filter((w) => (w.pred(ev) ? (w.resolve(ev), false) : true));
      }
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        CliProcess.running.delete(this);
        resolve({ code, signal });
      });
    });
    if (opts.input !== undefined) this.child.stdin!.end(opts.input);
  }

  /** Resolves with the first event (already seen or future) matching `pred`; rejects after `timeoutMs`. */
  waitFor(pred: ((e: CliEvent) => boolean) | string, timeoutMs = 15_000): Promise<CliEvent> {
    const p = typeof pred === 'string' ? (e: CliEvent) => e.event === pred : pred;
    const seen = this.events.find(p);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for an event; got: ${this.events.map((e) => e.event).join(', ')}\nstderr: ${this.stderr.slice(-2000)}`,
          ),
        );
      }, timeoutMs);
      const done = (e: CliEvent): void => {
        clearTimeout(timer);
        resolve(e);
      };
      this.waiters.push({ pred: p, resolve: done });
      void this.exited.then(() => {
        if (this.waiters.some((w) => w.resolve === done)) {
          clearTimeout(timer);
          reject(
            new Error(
              `process exited while waiting for an event; got: ${this.events.map((e) => e.event).join(', ')}\nstderr: ${this.stderr.slice(-2000)}`,
            ),
          );
        }
      });
    });
  }

  /** Sends a signal to the whole process group. */
  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    try {
      process.kill(-this.child.pid!, signal);
    } catch {
      /* already gone */
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit status. */
  async stop(
    signal: NodeJS.Signals = 'SIGTERM',
    graceMs = 8_000,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.kill(signal);
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
    const r = await this.exited;
    clearTimeout(timer);
    return r;
  }

  static async killAll(): Promise<void> {
    await Promise.all([...CliProcess.running].map((p) => p.stop('SIGKILL', 0)));
  }
}

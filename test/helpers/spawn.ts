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

/**
 * Runs independent `p2psync` invocations a few at a time, results in input order. A spawn is mostly CPU (starting
 * Node and loading the CLI), so three at once keep two cores busy; use it for cases that cannot affect each other,
 * such as refused flags that must exit before any side effect.
 */
export async function runCliMany(
  runs: ReadonlyArray<readonly [readonly string[], RunOptions?]>,
  concurrency = 3,
): Promise<CliResult[]> {
  const results: CliResult[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < runs.length) {
      const i = next++;
      const [args, opts] = runs[i]!;
      results[i] = await runCli([...args], opts);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, runs.length) }, worker));
  return results;
}

/** One line of a child's stdout: its JSON object when it has an `event` name, else `{event: '__non_json__', line}`. */
export type CliEvent = Record<string, unknown> & { event: string };

export interface ChildOptions {
  cwd?: string | undefined;
  /** The child's whole environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Written to stdin, which is then closed; without it stdin stays open (see `TestProcess.send`). */
  input?: string | undefined;
  /** Names the process in error messages. */
  label?: string;
}

/**
 * The one long-running child process of the tests: the binary (`CliProcess`), the RxDB fixtures and the store
 * writer. It runs in its own process group (so nothing it spawned outlives a stop), its stdout lines are parsed
 * into `events`, and `waitFor` waits for an event, never for time. Stop every instance in afterEach (`killAll`).
 */
export class TestProcess {
  readonly child: ChildProcess;
  readonly events: CliEvent[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly label: string;
  private waiters: Array<{ pred: (e: CliEvent) => boolean; resolve: (e: CliEvent) => void }> = [];
  private static running = new Set<TestProcess>();

  constructor(command: string, args: string[], opts: ChildOptions = {}) {
    this.label = opts.label ?? command;
    this.child = spawn(command, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    TestProcess.running.add(this);
    let buf = '';
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim()) this.push(parseLine(line));
      }
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    // A process that exits early closes its stdin; ignore EPIPE from late writes, the exit is reported elsewhere.
    this.child.stdin!.on('error', () => {});
    // 'close', not 'exit': it comes after stdout has ended, so the last events (`closed`) are parsed by then.
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        TestProcess.running.delete(this);
        resolve({ code, signal });
      });
    });
    if (opts.input !== undefined) this.child.stdin!.end(opts.input);
  }

  private push(ev: CliEvent): void {
    this.events.push(ev);
    this.waiters = this.waiters.filter((w) => (w.pred(ev) ? (w.resolve(ev), false) : true));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * Resolves with the first event (already seen from `fromIndex` on, or future) matching `pred` (or with that `event`
   * name); rejects after `timeoutMs` or when the process exits first, quoting the events seen and stderr.
   */
  waitFor(pred: ((e: CliEvent) => boolean) | string, timeoutMs = 15_000, fromIndex = 0): Promise<CliEvent> {
    const p = typeof pred === 'string' ? (e: CliEvent) => e.event === pred : pred;
    const seen = this.events.slice(fromIndex).find(p);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const fail = (why: string): void => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        clearTimeout(timer);
        reject(new Error(`${this.label}: ${why}; got: ${this.summary()}\nstderr: ${this.stderr.slice(-2000)}`));
      };
      const timer = setTimeout(() => fail(`timed out after ${timeoutMs} ms waiting for an event`), timeoutMs);
      const done = (e: CliEvent): void => {
        clearTimeout(timer);
        resolve(e);
      };
      this.waiters.push({ pred: p, resolve: done });
      void this.exited.then(() => {
        if (this.waiters.some((w) => w.resolve === done)) fail('process exited while waiting for an event');
      });
    });
  }

  /** Sends a signal to the whole process group. */
  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (!this.running || this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      /* already gone */
    }
  }

  /** `signal` (a clean shutdown), then SIGKILL after `graceMs`; resolves with the exit status. Idempotent. */
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

  protected summary(): string {
    return this.events
      .slice(-30)
      .map((e) => (e.event === '__non_json__' ? String(e.line) : e.event))
      .join(', ');
  }

  /** Kills every process of this class (and its subclasses) still running, at once. */
  static async killAll(): Promise<void> {
    await Promise.all([...TestProcess.running].filter((p) => p instanceof this).map((p) => p.stop('SIGKILL', 0)));
  }

  /** Stops every process of this class still running: SIGTERM, then SIGKILL after `graceMs`. */
  static async stopAll(graceMs = 5_000): Promise<void> {
    await Promise.all([...TestProcess.running].filter((p) => p instanceof this).map((p) => p.stop('SIGTERM', graceMs)));
  }
}

function parseLine(line: string): CliEvent {
  try {
    const v: unknown = JSON.parse(line);
    if (v && typeof v === 'object' && typeof (v as { event?: unknown }).event === 'string') return v as CliEvent;
  } catch {
    /* fall through */
  }
  return { event: '__non_json__', line };
}

/** A long-running `p2psync` process whose `--json` stdout is parsed into events. */
export class CliProcess extends TestProcess {
  constructor(args: string[], opts: RunOptions = {}) {
    super(...command(args, opts), { cwd: opts.cwd, env: childEnv(opts.env), input: opts.input, label: 'p2psync' });
  }
}

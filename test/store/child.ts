import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const WRITER = fileURLToPath(new URL('../fixtures/store-writer.mjs', import.meta.url));

/** A test/fixtures/store-writer.mjs process whose stdout lines can be awaited. */
export class WriterProcess {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private waiters: Array<{ pred: (l: string) => boolean; resolve: (l: string) => void }> = [];
  private static running = new Set<WriterProcess>();

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [WRITER, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    WriterProcess.running.add(this);
    let buf = '';
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        this.lines.push(line);
        this.waiters = this.waiters.filter((w) => (w.pred(line) ? (w.resolve(line), false) : true));
      }
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        WriterProcess.running.delete(this);
        resolve({ code, signal });
      });
    });
  }

  /** The first line (already printed or future) matching `pred`; rejects on exit or after `timeoutMs`. */
  waitForLine(pred: (l: string) => boolean, timeoutMs = 15_000): Promise<string> {
    const seen = this.lines.find(pred);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no matching line within ${timeoutMs} ms; stderr: ${this.stderr}`)),
        timeoutMs,
      );
      const done = (l: string): void => {
        clearTimeout(timer);
        resolve(l);
      };
      this.waiters.push({ pred, resolve: done });
      void this.exited.then(({ code, signal }) => {
        if (!this.waiters.some((w) => w.resolve === done)) return;
        clearTimeout(timer);
        reject(new Error(`writer exited (${code ?? signal}) before the line; stderr: ${this.stderr}`));
      });
    });
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }

  static async killAll(): Promise<void> {
    const all = [...WriterProcess.running];
    for (const p of all) p.kill('SIGKILL');
    await Promise.all(all.map((p) => p.exited));
  }
}

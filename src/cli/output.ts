import { Chalk, chalkStderr, type ChalkInstance } from 'chalk';
import ora, { type Ora } from 'ora';
import { EVENT_SCHEMA_VERSION, type SyncEvent } from '../core/events.js';
import { P2PSyncError, toP2PSyncError } from '../core/errors.js';

export interface OutputStreams {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

/**
 * Data and events go to stdout as NDJSON in `--json` mode and nowhere else; everything for humans goes to stderr,
 * coloured only when stderr is a TTY and NO_COLOR is unset (chalk itself ignores NO_COLOR).
 */
export class Output {
  readonly json: boolean;
  readonly color: ChalkInstance;
  private spinner: Ora | undefined;

  constructor(
    private readonly io: OutputStreams,
    json: boolean,
  ) {
    this.json = json;
    const noColor = io.env.NO_COLOR !== undefined && io.env.NO_COLOR !== '';
    this.color = noColor || !io.stderr.isTTY ? new Chalk({ level: 0 }) : chalkStderr;
  }

  /** True when a spinner may be shown: a TTY on stderr and human mode. */
  get interactive(): boolean {
    return !this.json && this.io.stderr.isTTY === true && !this.io.env.CI;
  }

  /** An event: one NDJSON line in JSON mode, else the human rendering (if any) on stderr. */
  event(e: SyncEvent, human?: string): void {
    if (this.json) {
      this.io.stdout.write(JSON.stringify({ ...e, v: EVENT_SCHEMA_VERSION, time: new Date().toISOString() }) + '\n');
    } else if (human !== undefined) {
      this.info(human);
    }
  }

  /** Plain data on stdout (e.g. `ls` documents), in both modes. */
  data(line: string): void {
    this.io.stdout.write(line + '\n');
  }

  info(text: string): void {
    if (this.json) return;
    if (this.spinner?.isSpinning) {
      this.spinner.clear();
      this.io.stderr.write(text + '\n');
      this.spinner.render();
    } else {
      this.io.stderr.write(text + '\n');
    }
  }

  /** Reports an error: an `error` event in JSON mode, a red line on stderr otherwise. */
  error(err: unknown): P2PSyncError {
    const e = toP2PSyncError(err);
    const details = Object.keys(e.details).length > 0 ? e.details : undefined;
    if (this.json) this.event({ event: 'error', code: e.code, message: e.message, ...(details ? { details } : {}) });
    else this.io.stderr.write(this.color.red(`p2psync: ${e.message}`) + this.color.dim(` [${e.code}]`) + '\n');
    return e;
  }

  warn(code: string, message: string): void {
    if (this.json) this.event({ event: 'warning', code, message });
    else this.io.stderr.write(this.color.yellow(`p2psync: warning: ${message}`) + this.color.dim(` [${code}]`) + '\n');
  }

  /** Starts or updates the status spinner (TTY, human mode only). */
  status(text: string): void {
    if (!this.interactive) return;
    if (!this.spinner)
      this.spinner = ora({ text, stream: this.io.stderr as NodeJS.WriteStream, discardStdin: false }).start();
    else this.spinner.text = text;
  }

  stopStatus(): void {
    this.spinner?.stop();
    this.spinner = undefined;
  }
}

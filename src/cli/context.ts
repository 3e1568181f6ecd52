import type { OutputStreams } from './output.js';

/** What every command gets: the streams and environment of this run, and where it leaves its exit code. */
export interface CliContext extends OutputStreams {
  /** Set by a command's action: the process exit code. */
  exitCode: number;
}

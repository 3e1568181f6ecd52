import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach } from 'vitest';
import { TestProcess, type CliEvent } from '../helpers/spawn.js';
import { StoreFixture } from './harness.js';

const WRITER = fileURLToPath(new URL('../fixtures/store-writer.mjs', import.meta.url));

/** The text of a stdout line (the writer prints plain lines, `ready`, `ack N`, ...). */
const lineOf = (e: CliEvent): string => (e.event === '__non_json__' ? String(e.line) : JSON.stringify(e));

/** A test/fixtures/store-writer.mjs process (see `TestProcess`) whose stdout lines can be awaited. */
export class WriterProcess extends TestProcess {
  constructor(args: string[]) {
    super(process.execPath, [WRITER, ...args], { label: 'store-writer' });
  }

  get lines(): string[] {
    return this.events.map(lineOf);
  }

  /** The first line (already printed or future) matching `pred`; rejects on exit or after `timeoutMs`. */
  async waitForLine(pred: (l: string) => boolean, timeoutMs = 15_000): Promise<string> {
    return lineOf(await this.waitFor((e) => pred(lineOf(e)), timeoutMs));
  }

  /** A crash by default: the writer is killed without a chance to clean up. */
  override kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    super.kill(signal);
  }
}

/**
 * For a suite that spawns writers: a fresh `StoreFixture` per test (`.fx`), and after each test every writer killed
 * and the fixture removed.
 */
export function writerFixture(): { readonly fx: StoreFixture } {
  const holder = {} as { fx: StoreFixture };
  beforeEach(async () => {
    holder.fx = await StoreFixture.create();
  });
  afterEach(async () => {
    await WriterProcess.killAll();
    await holder.fx.cleanup();
  });
  return holder;
}

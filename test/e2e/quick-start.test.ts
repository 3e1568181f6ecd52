import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { e2eFixture, putDocs, readDocs, waitUntil } from '../helpers/e2e.js';
import { CliProcess } from '../helpers/spawn.js';

const { temp } = e2eFixture();

/** A free port: bound once to learn a number, then closed (the first join hosts the embedded server there). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("the README's quick start", () => {
  it('two joins with no --signal (the embedded default) sync a write', async () => {
    const dir = await temp.make();
    // The README's commands, except that the embedded server's port is ephemeral instead of the shared 8787.
    const env = { P2PSYNC_EMBEDDED_SIGNAL_PORT: String(await freePort()) };
    const start = (file: string) =>
      new CliProcess(
        ['join', '--topic', 'notes-demo', '--store', join(dir, file), '--ice-bind', '127.0.0.1', '--json'],
        { env },
      );
    const a = start('a.json');
    await a.waitFor('signaling-hosted');
    const b = start('b.json');
    await Promise.all([a.waitFor('peer-connected', 20_000), b.waitFor('peer-connected', 20_000)]);
    expect(b.events.some((e) => e.event === 'signaling-hosted')).toBe(false);

    await putDocs(join(dir, 'a.json'), [{ id: 'n1', title: 'hello' }]);
    await waitUntil(async () => (await readDocs(join(dir, 'b.json'))).has('n1'));
    expect((await readDocs(join(dir, 'b.json'))).get('n1')).toEqual({ id: 'n1', title: 'hello' });
  });
});

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { doc, insert } from './contract.js';
import { StoreFixture } from './harness.js';

/** Issue 10 item 4: the short lock of a shell command never makes a `join` (or another command) fail. */
describe('store ownership waits for short holders', () => {
  let fx: StoreFixture;
  beforeEach(async () => {
    fx = await StoreFixture.create();
  });
  afterEach(async () => {
    await fx.cleanup();
  });

  it('a watching owner (join) waits for a command that owns the store, then opens with its writes', async () => {
    const path = fx.file('w.ndjson');
    const command = await fx.open({ path, watch: false });
    let opened = false;
    const joining = fx.open({ path, watch: true, lockTimeoutMs: 20_000 }).then((s) => ((opened = true), s));
    await insert(command, [doc('a')]);
    // The command still owns the store here, so the join cannot have opened yet.
    expect(opened).toBe(false);
    await command.close();
    const join = await joining;
    expect((await join.all()).map((d) => d.id)).toEqual(['a']);
  });

  it('gives up after lockTimeoutMs with E_LOCKED while a command keeps the store', async () => {
    const path = fx.file('t.ndjson');
    await fx.open({ path, watch: false });
    await expect(fx.open({ path, watch: false, lockTimeoutMs: 50 })).rejects.toMatchObject({
      code: 'E_LOCKED',
      details: { owner: true },
    });
  });

  it('does not wait for a long-lived owner: a second join fails at once, a command edits the file instead', async () => {
    const path = fx.file('j.ndjson');
    await fx.open({ path, watch: true });
    // A wait would outlast the test's own timeout.
    await expect(fx.open({ path, watch: true, lockTimeoutMs: 600_000 })).rejects.toMatchObject({
      code: 'E_LOCKED',
      details: { owner: true },
    });
  });
});

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { appendFile, rename, writeFile } from 'node:fs/promises';
import { FileWatcher } from '../../src/store/watcher.js';
import { StoreFixture, eventually } from './harness.js';

describe('FileWatcher', () => {
  let fx: StoreFixture;
  let watcher: FileWatcher | undefined;
  beforeEach(async () => {
    fx = await StoreFixture.create();
  });
  afterEach(async () => {
    watcher?.stop();
    await fx.cleanup();
  });

  function watch(path: string, options: Partial<{ fsWatch: boolean; pollIntervalMs: number; debounceMs: number }> = {}): boolean[] {
    const calls: boolean[] = [];
    watcher = new FileWatcher(path, { fsWatch: true, pollIntervalMs: 600_000, debounceMs: 10, ...options }, (inPlace) => calls.push(inPlace));
    watcher.start();
    return calls;
  }

  it('says "in place" for a write to the file and not for a replacement by rename', async () => {
    const path = fx.file('a.ndjson');
    await writeFile(path, '');
    const calls = watch(path);
    await appendFile(path, '{"id":"a"}\n');
    await eventually(() => calls.length === 1);
    expect(calls).toEqual([true]);
    await writeFile(path + '.tmp', '{"id":"b"}\n');
    await rename(path + '.tmp', path);
    await eventually(() => calls.length === 2);
    expect(calls).toEqual([true, false]);
  });

  it('coalesces a burst of notifications into one check that remembers any in-place write', async () => {
    const path = fx.file('a.ndjson');
    await writeFile(path, '');
    const calls = watch(path, { debounceMs: 200 });
    await appendFile(path, '{"id":"a"}\n');
    await writeFile(path + '.tmp', '{"id":"b"}\n');
    await rename(path + '.tmp', path);
    await eventually(() => calls.length === 1);
    await new Promise((r) => setTimeout(r, 300));
    expect(calls).toEqual([true]);
  });

  it('ignores other files in the directory and checks periodically without fs.watch', async () => {
    const path = fx.file('a.ndjson');
    await writeFile(path, '');
    const calls = watch(path, { fsWatch: false, pollIntervalMs: 20 });
    await writeFile(fx.file('other.ndjson'), '{"id":"x"}\n');
    await eventually(() => calls.length >= 2);
    expect(new Set(calls)).toEqual(new Set([true]));
    watcher!.stop();
    const seen = calls.length;
    await new Promise((r) => setTimeout(r, 60));
    expect(calls).toHaveLength(seen);
  });

  it('does not poll where fs.watch works (the periodic check is only the fallback)', async () => {
    const path = fx.file('a.ndjson');
    await writeFile(path, '');
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const calls = watch(path, { pollIntervalMs: 20 });
      vi.advanceTimersByTime(1_000);
      expect(calls).toEqual([]);
      watcher!.stop();
      const polled = watch(path, { fsWatch: false, pollIntervalMs: 20 });
      vi.advanceTimersByTime(100);
      expect(polled).toHaveLength(5);
    } finally {
      vi.useRealTimers();
    }
  });
});

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

  function watch(
    path: string,
    options: Partial<{ fsWatch: boolean; pollIntervalMs: number; debounceMs: number }> = {},
  ): boolean[] {
    const calls: boolean[] = [];
    watcher = new FileWatcher(path, { fsWatch: true, pollIntervalMs: 600_000, debounceMs: 10, ...options }, (inPlace) =>
      calls.push(inPlace),
    );
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

  it('checks the first change of a quiet spell at once, without waiting for the throttle time', async () => {
    const path = fx.file('a.ndjson');
    await writeFile(path, '');
    // An hour of throttle: only a leading-edge check can arrive while the test waits.
    const calls = watch(path, { debounceMs: 3_600_000 });
    await appendFile(path, '{"id":"a"}\n');
    await eventually(() => calls.length === 1);
    expect(calls).toEqual([true]);
  });

  it('coalesces the notifications that follow a check into one check that remembers any in-place write', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate'] });
    try {
      const calls = watch(fx.file('a.ndjson'), { fsWatch: false, debounceMs: 100 });
      watcher!.notify(false);
      watcher!.notify(false);
      expect(watcher!.pending).toBe(true);
      vi.advanceTimersByTime(1);
      expect(calls).toEqual([false]);
      watcher!.notify(true);
      watcher!.notify(false);
      watcher!.notify(false);
      vi.advanceTimersByTime(50);
      expect(calls).toEqual([false]);
      expect(watcher!.pending).toBe(true);
      vi.advanceTimersByTime(50);
      expect(calls).toEqual([false, true]);
      // The trailing check opened a window of its own, which ends quietly.
      vi.advanceTimersByTime(1_000);
      expect(calls).toEqual([false, true]);
      expect(watcher!.pending).toBe(false);
      watcher!.notify(false);
      vi.advanceTimersByTime(1);
      expect(calls).toEqual([false, true, false]);
      // A check the owner makes itself cancels the one pending.
      watcher!.notify(true);
      watcher!.cancelPending();
      vi.advanceTimersByTime(1_000);
      expect(calls).toEqual([false, true, false]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('checks periodically without fs.watch, and stops checking once stopped', async () => {
    const path = fx.file('a.ndjson');
    await writeFile(path, '');
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const calls = watch(path, { fsWatch: false, pollIntervalMs: 20 });
      vi.advanceTimersByTime(40);
      expect(calls).toEqual([true, true]);
      watcher!.stop();
      vi.advanceTimersByTime(1_000);
      expect(calls).toHaveLength(2);
    } finally {
      vi.useRealTimers();
    }
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

import { afterEach, describe, expect, it, vi } from 'vitest';
import type { SyncEvent } from '../../src/core/events.js';
import { ProgressEvents, type ProgressEvent } from '../../src/replication/progress.js';

const pulled = (count: number, total: number): ProgressEvent => ({ event: 'pulled', peerId: 'p', count, total });
const pushed = (count: number, conflicts: number, total: number): ProgressEvent => ({
  event: 'pushed',
  peerId: 'p',
  count,
  conflicts,
  total,
});

describe('ProgressEvents', () => {
  it('sends the first event at once and adds up the ones that follow within the interval', () => {
    const out: SyncEvent[] = [];
    const p = new ProgressEvents((e) => out.push(e), 60_000);
    p.add(pulled(10, 10));
    expect(out).toEqual([pulled(10, 10)]);
    p.add(pulled(20, 30));
    p.add(pulled(5, 35));
    p.add(pushed(3, 1, 3));
    expect(out).toHaveLength(2); // a first push goes out at once too: kinds are apart
    p.add(pushed(4, 2, 7));
    p.flush();
    expect(out).toEqual([pulled(10, 10), pushed(3, 1, 3), pulled(25, 35), pushed(4, 2, 7)]);
    p.flush();
    expect(out).toHaveLength(4);
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends what is pending once the interval is over, without a flush', () => {
    // Fake clock: the test decides when the interval is over, however slow the machine is.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const out: SyncEvent[] = [];
    const p = new ProgressEvents((e) => out.push(e), 30);
    p.add(pulled(1, 1));
    p.add(pulled(2, 3));
    p.add(pulled(3, 6));
    expect(out).toEqual([pulled(1, 1)]);
    vi.advanceTimersByTime(29);
    expect(out).toEqual([pulled(1, 1)]);
    vi.advanceTimersByTime(1);
    expect(out).toEqual([pulled(1, 1), pulled(5, 6)]);
  });
});

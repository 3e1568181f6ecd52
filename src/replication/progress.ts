import type { EmitEvent, SyncEvent } from '../core/events.js';

export type ProgressEvent = Extract<SyncEvent, { event: 'pulled' | 'pushed' }>;

/** Least time between two `pulled` (or two `pushed`) events of one link. */
export const PROGRESS_INTERVAL_MS = 250;

export function isProgressEvent(e: SyncEvent): e is ProgressEvent {
  return e.event === 'pulled' || e.event === 'pushed';
}

/**
 * Coalesces the `pulled` / `pushed` events of one link: the first one after a quiet spell goes out at once, the
 * ones that follow at most every `intervalMs` with their counts added up, and whatever is pending goes out on
 * `flush()` (the link went idle, another event is due, the link closed). An initial sync of 100k documents then
 * prints a handful of progress lines instead of one per batch, each of which cost the CLI a synchronous write.
 */
export class ProgressEvents {
  private readonly kinds = new Map<
    ProgressEvent['event'],
    { pending: ProgressEvent | undefined; last: number; timer: NodeJS.Timeout | undefined }
  >();

  constructor(
    private readonly emit: EmitEvent,
    private readonly intervalMs = PROGRESS_INTERVAL_MS,
  ) {}

  add(e: ProgressEvent): void {
    let k = this.kinds.get(e.event);
    if (!k) this.kinds.set(e.event, (k = { pending: undefined, last: -Infinity, timer: undefined }));
    k.pending = k.pending ? merge(k.pending, e) : e;
    const wait = k.last + this.intervalMs - performance.now();
    if (wait <= 0) this.send(e.event);
    else k.timer ??= setTimeout(() => this.send(e.event), wait);
  }

  /** Sends everything pending now. */
  flush(): void {
    for (const kind of this.kinds.keys()) this.send(kind);
  }

  private send(kind: ProgressEvent['event']): void {
    const k = this.kinds.get(kind)!;
    clearTimeout(k.timer);
    k.timer = undefined;
    const e = k.pending;
    if (!e) return;
    k.pending = undefined;
    k.last = performance.now();
    this.emit(e);
  }
}

/** `b` with the counts of `a` added: one event for both batches. */
function merge(a: ProgressEvent, b: ProgressEvent): ProgressEvent {
  if (a.event === 'pushed' && b.event === 'pushed')
    return { ...b, count: a.count + b.count, conflicts: a.conflicts + b.conflicts };
  return { ...b, count: a.count + b.count };
}

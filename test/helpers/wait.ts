// The two ways tests wait, in one place. Prefer `within` around a promise that an event settles; `pollUntil` is
// for state that has no event (a file on disk). Neither sleeps as a means of synchronisation: the timeouts are
// safety nets, generous for a loaded 2-core machine.

/** Rejects with `label` when `promise` has not settled within `ms`. */
export function within<T>(promise: Promise<T>, label: string, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${label}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export interface PollOptions {
  timeoutMs: number;
  /** Time between checks. */
  intervalMs?: number;
  /** Added to the timeout error (e.g. what was seen last). */
  describe?: () => Promise<string> | string;
  /** Errors of `check` that mean "not yet" (default: none; any other error fails at once). */
  retryOn?: (err: unknown) => boolean;
}

/** Checks until `check` returns true; rejects after `timeoutMs`. */
export async function pollUntil(check: () => Promise<boolean> | boolean, o: PollOptions): Promise<void> {
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      if (!o.retryOn?.(err)) throw err;
    }
    if (Date.now() > deadline)
      throw new Error(`condition not met within ${o.timeoutMs} ms. ${(await o.describe?.()) ?? ''}`);
    await new Promise((r) => setTimeout(r, o.intervalMs ?? 20));
  }
}

import type { EmitEvent } from '../core/events.js';

/**
 * Wraps an event sink for one signaling client: until the client has connected once, each failed attempt is
 * reported as a `warning` with code `E_UNREACHABLE` and the time of the next attempt, instead of a
 * `signaling-disconnected` (there was no connection to lose). After the first connection events pass unchanged.
 */
export function reportUnreachable(emit: EmitEvent, now: () => number = Date.now): EmitEvent {
  let reached = false;
  return (e) => {
    if (e.event === 'signaling-connected') reached = true;
    if (e.event !== 'signaling-disconnected' || reached) return emit(e);
    const retryAt = new Date(now() + e.retryInMs).toISOString();
    emit({
      event: 'warning',
      code: 'E_UNREACHABLE',
      message: `cannot reach the signaling server ${e.url} (${e.reason}); retrying in ${Math.round(e.retryInMs / 100) / 10} s`,
      details: { url: e.url, topic: e.topic, reason: e.reason, retryInMs: e.retryInMs, retryAt },
    });
  };
}

import { randomToken } from '../core/random.js';
import { toP2PSyncError } from '../core/errors.js';
import { createSignalingClient, type SignalingClient } from '../signaling/client.js';
import type { DoctorCheck } from './types.js';

/**
 * Two clients in a fresh throwaway topic: the first connects (accepts the token, if any), the second joins and
 * must appear in the first one's member list, a signal must travel between them, and the second's departure
 * must reach the first. Each step is timed; the first that fails is the reason.
 */
export async function checkSignaling(url: string, timeoutMs: number): Promise<DoctorCheck> {
  const topic = `p2psync-doctor-${randomToken(12)}`;
  const clients: SignalingClient[] = [];
  const open = (): SignalingClient => {
    const client = createSignalingClient({
      url,
      topic,
      connectTimeoutMs: timeoutMs,
      reconnect: { initialMs: timeoutMs, maxMs: timeoutMs },
    });
    clients.push(client);
    return client;
  };
  const timings: Record<string, number> = {};
  let step = 'connect';
  const started = performance.now();
  const lap = (name: string, since: number): number => (timings[name] = Math.round(performance.now() - since));
  try {
    const a = open();
    await a.waitConnected(timeoutMs);
    lap('connectMs', started);
    step = 'join';
    const joinStart = performance.now();
    const b = open();
    const bId = await b.waitConnected(timeoutMs);
    await until(a, (ids) => ids.includes(bId), timeoutMs, 'the second client never appeared in the topic');
    lap('joinMs', joinStart);
    step = 'signal relay';
    const relayStart = performance.now();
    const relayed = new Promise<void>((resolve) => b.onSignal((m) => m.from === a.peerId && resolve()));
    a.sendSignal(bId, { type: 'p2psync-doctor' });
    await withTimeout(relayed, timeoutMs, 'a signal sent to the second client never arrived');
    lap('signalMs', relayStart);
    step = 'leave';
    const leaveStart = performance.now();
    await b.close();
    await until(a, (ids) => !ids.includes(bId), timeoutMs, 'the second client never left the topic');
    lap('leaveMs', leaveStart);
    return {
      check: 'signal',
      target: a.url,
      ok: true,
      reason: `connect ${timings['connectMs']} ms, join ${timings['joinMs']} ms, signal relay ${timings['signalMs']} ms, leave ${timings['leaveMs']} ms`,
      details: timings,
    };
  } catch (err) {
    const e = toP2PSyncError(err, 'E_SIGNALING');
    return {
      check: 'signal',
      target: clients[0]?.url ?? url,
      ok: false,
      reason: `${step} failed: ${e.message}`,
      details: { ...timings, code: e.code, step },
    };
  } finally {
    await Promise.allSettled(clients.map((c) => c.close()));
  }
}

function until(
  client: SignalingClient,
  test: (ids: string[]) => boolean,
  timeoutMs: number,
  message: string,
): Promise<void> {
  if (test([...client.peers])) return Promise.resolve();
  let off = (): void => undefined;
  const met = new Promise<void>((resolve) => {
    off = client.onPeers((ids) => test(ids) && resolve());
  });
  return withTimeout(met, timeoutMs, message).finally(() => off());
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`${message} within ${ms / 1000} s`)), ms)),
  );
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

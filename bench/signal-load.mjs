// WebSocket load for signaling servers (bench/signal.mjs): many raw clients in this process, speaking RxDB's
// signaling protocol (init, join, joined, signal), against any server that speaks it.
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { percentile, round } from './lib/stats.mjs';

/**
 * CPU seconds a process has used so far, all its threads: the scheduler's nanosecond counters
 * (/proc/PID/task/TID/schedstat), since /proc/PID/stat counts in 10 ms ticks, too coarse for a join phase of a
 * second or two.
 */
export function cpuSeconds(pid) {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return ns / 1e9;
}

/** Current resident set size in bytes. */
export function rssBytes(pid) {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : undefined;
}

/** One raw signaling client. */
class Client {
  constructor(url) {
    this.ws = new WebSocket(url, { perMessageDeflate: false });
    this.id = undefined;
    this.onJoined = undefined;
    /** Relay samples waiting for their frame, by sample number. */
    this.pending = new Map();
    this.ready = new Promise((resolve, reject) => {
      this.ws.on('error', reject);
      this.ws.on('message', (data) => {
        const text = data.toString();
        // Parse only what is needed: relayed signals are the hot path.
        if (text.startsWith('{"type":"signal"') || text.includes('"type":"signal"'))
          return this.pending.get(JSON.parse(text).data?.k)?.();
        const msg = JSON.parse(text);
        if (msg.type === 'init') {
          this.id = msg.yourPeerId;
          resolve();
        } else if (msg.type === 'joined') {
          this.members = msg.otherPeerIds;
          this.onJoined?.(msg.otherPeerIds);
        }
      });
    });
    this.closed = new Promise((resolve) => this.ws.on('close', resolve));
  }

  send(msg) {
    this.ws.send(JSON.stringify(msg));
  }
}

/** Runs `work(i)` for i in 0..n-1 with at most `window` in flight. */
async function pool(n, window, work) {
  let next = 0;
  const lanes = Array.from({ length: Math.min(window, n) }, async () => {
    while (next < n) await work(next++);
  });
  await Promise.all(lanes);
}

/**
 * Opens `sockets` clients to `urls` (round robin) and joins them into rooms of `roomSize` (members of one room
 * alternate between the urls). Returns the join rate and the server's cost (`stats`), the clients (call
 * `closeAll`) and `relay(n)`, which relays `n` signals between room mates one at a time and resolves with their
 * latencies (ms from send until the receiver has the frame) and the time it took.
 */
export async function joinLoad({ urls, sockets, roomSize, pids = [], window = 200, relayWindow = 1 }) {
  const clients = [];
  const t0 = performance.now();
  await pool(sockets, window, async (i) => {
    const c = new Client(urls[i % urls.length]);
    clients[i] = c;
    await c.ready;
  });
  const connectMs = performance.now() - t0;

  const cpu0 = pids.map(cpuSeconds);
  const tj = performance.now();
  await pool(sockets, window, async (i) => {
    const c = clients[i];
    const room = `bench-room-${String(Math.floor(i / roomSize)).padStart(6, '0')}`;
    c.room = room;
    await new Promise((resolve) => {
      c.onJoined = (ids) => {
        if (ids.includes(c.id)) {
          c.onJoined = undefined;
          resolve();
        }
      };
      c.send({ type: 'join', room });
    });
  });
  const joinMs = performance.now() - tj;
  // A client only signals peers its member list shows; across nodes a mate appears a moment after its join.
  const listed = () => clients.every((c, i) => !clients[i ^ 1] || c.members?.includes(clients[i ^ 1].id));
  for (let waited = 0; !listed() && waited < 10_000; waited += 10) await new Promise((r) => setTimeout(r, 10));
  const joinCpu = pids.map((pid, k) => cpuSeconds(pid) - cpu0[k]);
  const rss = pids.map(rssBytes);
  const stats = {
    sockets,
    roomSize,
    connectMs: round(connectMs),
    joinsPerSecond: round((sockets / joinMs) * 1000),
    joinCpuSeconds: joinCpu.map((s) => round(s, 3)),
    cpuMicrosPerJoin: joinCpu.map((s) => round((s / sockets) * 1e6)),
    rssMiB: rss.map((b) => round((b ?? 0) / 1048576, 1)),
  };

  // Relay: sender i -> its room mate; a sample is the time until the receiver has the frame.
  const load = { stats, clients, lost: 0, relay: undefined };
  let k = 0;
  load.relay = async (n) => {
    const latencies = [];
    const t = performance.now();
    await pool(n, relayWindow, async () => {
      const sample = k++;
      const i = (sample * 7919) % sockets; // spread senders so no socket nears its rate limit
      const from = clients[i];
      // Room sizes are even, so i ^ 1 is a room mate (the urls alternate, so with two nodes it is on the other).
      const to = clients[i ^ 1];
      if (!to) return;
      await new Promise((resolve) => {
        const sent = performance.now();
        // A frame that never arrives is counted, not waited for forever.
        const timer = setTimeout(() => {
          load.lost++;
          to.pending.delete(sample);
          resolve();
        }, 2_000);
        to.pending.set(sample, () => {
          clearTimeout(timer);
          latencies.push(performance.now() - sent);
          to.pending.delete(sample);
          resolve();
        });
        from.send({
          type: 'signal',
          senderPeerId: from.id,
          receiverPeerId: to.id,
          room: from.room,
          data: { type: 'offer', sdp: 'v=0 '.padEnd(600, 'x'), k: sample },
          connectionId: 'benchbench',
        });
      });
    });
    return { latencies, ms: performance.now() - t };
  };
  return load;
}

/** p50 and p99 of relay latencies, under `prefix`P50Ms and `prefix`P99Ms. */
export function relayPercentiles(latencies, prefix = 'relay') {
  return {
    [`${prefix}P50Ms`]: round(percentile(latencies, 50), 3),
    [`${prefix}P99Ms`]: round(percentile(latencies, 99), 3),
  };
}

/**
 * `joinLoad`, then `firstSamples` relays right after the joins and `samples` more. The first relays a server
 * handles meet its relay path cold (a fresh process compiles it, on the same cores, while relaying), so they are
 * reported apart (`firstRelayP50Ms`/`P99Ms`) from the steady relay latency (`relayP50Ms`/`P99Ms`).
 */
export async function signalLoad({ samples, firstSamples = 0, ...options }) {
  const load = await joinLoad(options);
  const first = firstSamples > 0 ? await load.relay(firstSamples) : undefined;
  const { latencies, ms } = await load.relay(samples);
  return {
    ...load.stats,
    ...(first && relayPercentiles(first.latencies, 'firstRelay')),
    ...relayPercentiles(latencies),
    relaysPerSecond: round((latencies.length / ms) * 1000),
    samples: latencies.length,
    lost: load.lost,
    clients: load.clients,
  };
}

export async function closeAll(clients) {
  for (const c of clients) c?.ws.terminate();
  await Promise.all(clients.map((c) => c?.closed));
}

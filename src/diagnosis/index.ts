/**
 * Says what happened to the peers of a `join`: a warning with the ICE outcome and a hint for every failed
 * connection attempt, and for `--once --timeout` which of three situations the timeout met. Fed by the
 * session with signaling membership and mesh events; no I/O of its own except the optional TURN probe.
 */
import type { EmitEvent } from '../core/events.js';
import { iceHint, type CandidateCounts, type IceServerSummary } from '../transport/ice-report.js';
import { isTurnUrl, redact, type IceConfig, type IceServer } from '../transport/ice.js';
import type { MeshEvent } from '../transport/mesh.js';

/** Asks a TURN server for an allocation; resolves to its refusal ("401 Unauthorized") or undefined if it works. */
export type TurnProbe = (server: IceServer, url: string) => Promise<string | undefined>;

export type TimeoutDiagnosis = 'no-peer' | 'ice-failed' | 'not-in-sync';

/** A TURN probe answer is reused this long, so retries every few seconds do not hammer the server. */
const PROBE_CACHE_MS = 30_000;

export interface PeerCounts {
  /** Distinct peers seen in the topic through signaling. */
  signaled: number;
  /** Distinct peers a WebRTC link was connected to. */
  connected: number;
  /** Peers whose replication handshake completed (distinct replicas). */
  handshaken: number;
  waitPeers: number;
}

/** The `--once` timeout's cause, from the counts alone (pure). */
export function classifyTimeout(c: PeerCounts): TimeoutDiagnosis {
  if (c.signaled === 0 && c.connected === 0) return 'no-peer';
  if (c.connected < c.signaled && c.handshaken < c.waitPeers) return 'ice-failed';
  return 'not-in-sync';
}

export function timeoutMessage(diagnosis: TimeoutDiagnosis, c: PeerCounts, seconds: number): string {
  switch (diagnosis) {
    case 'no-peer':
      return `not in sync after ${seconds} s: no peer joined the topic (is the other side running, with the same --signal and --topic?)`;
    case 'ice-failed':
      return `not in sync after ${seconds} s: ${c.signaled} peer(s) seen through signaling, but ${c.signaled - c.connected} could not be connected (ICE failed; see the warnings for the hint)`;
    case 'not-in-sync':
      return `not in sync after ${seconds} s: connected to ${c.connected} peer(s), ${c.handshaken} of ${c.waitPeers} awaited replica(s) in sync so far`;
  }
}

export class ConnectionDiagnosis {
  private readonly signaled = new Set<string>();
  private readonly connected = new Set<string>();
  private readonly servers: IceServerSummary;
  private readonly turn: Array<{ server: IceServer; url: string }> = [];
  private readonly probes = new Map<string, { at: number; answer: Promise<string | undefined> }>();
  private iceFailures = 0;
  private closed = false;

  constructor(
    ice: IceConfig,
    private readonly emit: EmitEvent,
    private readonly probeTurn?: TurnProbe,
  ) {
    let stun = 0;
    for (const server of ice.iceServers ?? []) {
      for (const url of Array.isArray(server.urls) ? server.urls : [server.urls]) {
        if (isTurnUrl(url)) this.turn.push({ server, url });
        else stun++;
      }
    }
    this.servers = { stun, turn: this.turn.length, relayOnly: ice.transportPolicy === 'relay' };
  }

  /** Stops emitting: a warning still waiting for a TURN probe must not follow the run's last event. */
  close(): void {
    this.closed = true;
  }

  /** Signaling membership of one topic. */
  peers(topic: string, ids: string[]): void {
    for (const id of ids) this.signaled.add(`${topic}\0${id}`);
  }

  /** Mesh events of one topic. */
  meshEvent(topic: string, e: MeshEvent): void {
    if (e.event === 'attempt') this.signaled.add(`${topic}\0${e.remotePeerId}`);
    if (e.event === 'connected') this.connected.add(`${topic}\0${e.remotePeerId}`);
    if (e.event === 'failed' && e.ice) void this.warn(topic, e.remotePeerId, e.reason, e.ice);
  }

  counts(handshaken: number, waitPeers: number): PeerCounts {
    let connected = 0;
    for (const key of this.connected) if (this.signaled.has(key)) connected++;
    return { signaled: this.signaled.size, connected, handshaken, waitPeers };
  }

  /** The `E_TIMEOUT` message and details for a `--once` run that timed out. */
  timeout(ms: number, handshaken: number, waitPeers: number): { message: string; details: Record<string, unknown> } {
    const c = this.counts(handshaken, waitPeers);
    const diagnosis = classifyTimeout(c);
    return {
      message: timeoutMessage(diagnosis, c, ms / 1000),
      details: {
        diagnosis,
        peersSeen: handshaken,
        waitPeers,
        peersSignaled: c.signaled,
        peersConnected: c.connected,
        iceFailures: this.iceFailures,
      },
    };
  }

  private async warn(
    topic: string,
    peerId: string,
    reason: string,
    ice: { local: CandidateCounts; remote: CandidateCounts; iceState: string; gatheringState: string },
  ): Promise<void> {
    this.iceFailures++;
    const turn = ice.local.relay === 0 && this.turn.length > 0 ? await this.turnAnswers() : [];
    const refusal = turn.find((t) => t.error !== undefined)?.error;
    const hint = iceHint(ice, this.servers, refusal);
    if (this.closed) return;
    this.emit({
      event: 'warning',
      code: 'E_ICE_FAILED',
      message: `could not connect to peer ${peerId} (${reason}): ${hint}`,
      details: {
        topic,
        peerId,
        reason,
        candidates: { local: ice.local, remote: ice.remote },
        iceState: ice.iceState,
        gatheringState: ice.gatheringState,
        ...(turn.length > 0
          ? {
              turn: turn.map((t) => ({
                url: t.url,
                ok: t.error === undefined,
                ...(t.error ? { error: t.error } : {}),
              })),
            }
          : {}),
        hint,
      },
    });
  }

  private turnAnswers(): Promise<Array<{ url: string; error: string | undefined }>> {
    const probe = this.probeTurn;
    if (!probe) return Promise.resolve([]);
    const now = Date.now();
    return Promise.all(
      this.turn.map(async ({ server, url }) => {
        let cached = this.probes.get(url);
        if (!cached || now - cached.at > PROBE_CACHE_MS) {
          cached = {
            at: now,
            answer: probe(server, url).catch((err: unknown) => String(err instanceof Error ? err.message : err)),
          };
          this.probes.set(url, cached);
        }
        return { url: redact(url), error: await cached.answer };
      }),
    );
  }
}

import type SimplePeer from 'simple-peer';
import type { LinkPath, PathEnd } from '../core/link.js';
import { nativeOf } from './native-handle.js';

/** ICE candidate types (RFC 8445 §5.1.1): local interface, NAT mapping seen by STUN, seen by the peer, TURN relay. */
export const CANDIDATE_TYPES = ['host', 'srflx', 'prflx', 'relay'] as const;
export type CandidateType = (typeof CANDIDATE_TYPES)[number];
export type CandidateCounts = Record<CandidateType, number>;

/** What ICE did in one failed attempt: candidates gathered here and received from the remote, by type. */
export interface IceOutcome {
  local: CandidateCounts;
  remote: CandidateCounts;
  /** libdatachannel's ICE and gathering states when the attempt was given up. */
  iceState: string;
  gatheringState: string;
}

const zero = (): CandidateCounts => ({ host: 0, srflx: 0, prflx: 0, relay: 0 });

/** The type of a simple-peer candidate signal (`{type: 'candidate', candidate: {candidate: '... typ host'}}`). */
export function candidateTypeOf(signal: unknown): CandidateType | undefined {
  if (typeof signal !== 'object' || signal === null) return undefined;
  const inner = (signal as { candidate?: unknown }).candidate;
  const line = typeof inner === 'object' && inner !== null ? (inner as { candidate?: unknown }).candidate : undefined;
  if (typeof line !== 'string') return undefined;
  const type = /\btyp (\w+)/.exec(line)?.[1];
  return (CANDIDATE_TYPES as readonly string[]).includes(type ?? '') ? (type as CandidateType) : undefined;
}

/** Counts the candidates of one attempt, both ways. */
export class CandidateTally {
  readonly local = zero();
  readonly remote = zero();

  note(side: 'local' | 'remote', signal: unknown): void {
    const type = candidateTypeOf(signal);
    if (type) this[side][type]++;
  }

  outcome(peer: SimplePeer.Instance): IceOutcome {
    const native = nativeOf(peer);
    let iceState = 'closed';
    let gatheringState = 'unknown';
    try {
      if (native) {
        iceState = native.iceState();
        gatheringState = native.gatheringState();
      }
    } catch {
      // already closed natively
    }
    return { local: { ...this.local }, remote: { ...this.remote }, iceState, gatheringState };
  }
}

function pathEnd(info: { address?: unknown; port?: unknown; type?: unknown; transportType?: unknown }): PathEnd {
  return {
    type: String(info.type ?? 'unknown').toLowerCase(),
    protocol: String(info.transportType ?? 'unknown').toLowerCase(),
    address: String(info.address ?? ''),
    port: Number(info.port ?? 0),
  };
}

/** The candidate pair ICE selected for a connected peer, or undefined if libdatachannel cannot say. */
export function selectedPathOf(peer: SimplePeer.Instance): LinkPath | undefined {
  try {
    const pair = nativeOf(peer)?.getSelectedCandidatePair();
    if (!pair) return undefined;
    const local = pathEnd(pair.local);
    const remote = pathEnd(pair.remote);
    return { local, remote, relayed: local.type === 'relay' || remote.type === 'relay' };
  } catch {
    return undefined;
  }
}

/** Which ICE servers a peer was configured with, for hints. */
export interface IceServerSummary {
  stun: number;
  turn: number;
  relayOnly: boolean;
}

/**
 * A one-sentence next step for a failed attempt, from what ICE gathered on both sides. `turnError` is what
 * the TURN server answered an allocation with (e.g. "401 Unauthorized"), when known.
 */
export function iceHint(outcome: IceOutcome, servers: IceServerSummary, turnError?: string): string {
  const { local, remote } = outcome;
  const remoteTotal = remote.host + remote.srflx + remote.prflx + remote.relay;
  if (outcome.iceState === 'connected' || outcome.iceState === 'completed') {
    return 'ICE found a path, but the DTLS or data channel setup on top of it failed (an occasional libdatachannel error): the attempt is retried';
  }
  if (servers.turn > 0 && local.relay === 0) {
    return `the TURN server gave no relay address${turnError ? ` (it answered ${turnError})` : ''}: check its address, that UDP to it is allowed, and the username and credential (p2psync doctor --ice-server ... tests it)`;
  }
  if (servers.stun === 0 && servers.turn === 0) {
    return 'no ICE server is configured, so only host addresses were tried: across NATs add --ice-server stun:HOST:PORT, and a TURN server (turn:USER:PASS@HOST:PORT) when a side is behind a symmetric NAT';
  }
  if (servers.stun > 0 && !servers.relayOnly && local.srflx === 0 && local.relay === 0) {
    return 'the STUN server did not answer (no server-reflexive address was gathered): check its URL and that UDP to it is allowed (p2psync doctor --ice-server ... tests it)';
  }
  if (remoteTotal === 0) {
    return 'the remote sent no ICE candidates: its own ICE servers may be unreachable or misconfigured; check its output';
  }
  if (local.relay === 0 && remote.relay === 0) {
    return 'addresses were exchanged but no direct path worked: a side is probably behind a symmetric NAT or a firewall that drops UDP; add a TURN server (--ice-server turn:USER:PASS@HOST:PORT) on at least one side';
  }
  if (!servers.relayOnly) {
    // seen behind symmetric NATs: libjuice gathers relay candidates but never completes a relayed pair in
    // `all` mode (test/system/nat.test.ts), while relay-only connects in seconds
    return 'relay candidates were exchanged but no pair worked: use --ice-transport relay on both sides (node-datachannel does not fall back to TURN by itself behind a symmetric NAT), and check that the TURN server may relay to the other side';
  }
  return 'even the relayed path failed: check that the TURN server may relay to the other side (coturn denies private peer addresses unless allowed) and that the other side can reach it';
}

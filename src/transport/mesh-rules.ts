/*
 * The small decisions of the mesh (docs/PROTOCOL.md §1.5), as pure functions and one small data structure, so that
 * they can be unit-tested without WebRTC.
 */

/**
 * The initiator rule: in each pair the peer with the lexicographically smaller peer id (JS string comparison,
 * UTF-16 code units) initiates, so exactly one side of a pair ever offers or reconnects.
 */
export function isInitiator(ownPeerId: string, remotePeerId: string): boolean {
  return remotePeerId > ownPeerId;
}

/** Reconnect backoff of an initiator, per remote: `initialMs`, times `factor` per failure, capped at `maxMs`. */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  factor: number;
}

/** RxDB's constants (docs/PROTOCOL.md §1.7): 500 ms doubling to 15 s, reset on a successful connect. */
export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 15_000, factor: 2 };

/** The delay after `delayMs` (the first delay when undefined). */
export function nextBackoff(delayMs: number | undefined, options: BackoffOptions = DEFAULT_BACKOFF): number {
  if (delayMs === undefined) return Math.min(options.initialMs, options.maxMs);
  return Math.min(delayMs * options.factor, options.maxMs);
}

/** A validated simple-peer signal of the kinds this data-only transport uses. */
export type PeerSignal =
  | { type: 'offer' | 'answer'; sdp: string }
  | { type: 'candidate'; candidate: { candidate: string; sdpMLineIndex?: number | null; sdpMid?: string | null } };

/** SDPs of a data-only session are a few KiB; anything far bigger is garbage or hostile. */
const MAX_SDP_CHARS = 64 * 1024;
const MAX_CANDIDATE_CHARS = 2048;

/**
 * Validates an untrusted `signal.data`. Returns a fresh object with only the known fields, or undefined for
 * anything else (including simple-peer's media-only `renegotiate` / `transceiverRequest`, never used here).
 */
export function parseSignal(data: unknown): PeerSignal | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const d = data as Record<string, unknown>;
  if (d['type'] === 'offer' || d['type'] === 'answer') {
    const sdp = d['sdp'];
    if (typeof sdp !== 'string' || sdp.length === 0 || sdp.length > MAX_SDP_CHARS) return undefined;
    return { type: d['type'], sdp };
  }
  if (d['type'] === 'candidate') {
    const c = d['candidate'];
    if (typeof c !== 'object' || c === null) return undefined;
    const cand = c as Record<string, unknown>;
    const text = cand['candidate'];
    if (typeof text !== 'string' || text.length > MAX_CANDIDATE_CHARS) return undefined;
    const index = cand['sdpMLineIndex'];
    const mid = cand['sdpMid'];
    const candidate: { candidate: string; sdpMLineIndex?: number | null; sdpMid?: string | null } = { candidate: text };
    if (index === null || (typeof index === 'number' && Number.isInteger(index) && index >= 0)) {
      candidate.sdpMLineIndex = index;
    }
    if (mid === null || (typeof mid === 'string' && mid.length <= 16)) candidate.sdpMid = mid;
    return { type: 'candidate', candidate };
  }
  return undefined;
}

/**
 * Candidates that reached a responder before their offer (simple-peer over the polyfill often emits them
 * first), held until the offer of the same attempt arrives. Per remote only the newest attempt's candidates are
 * kept: the initiator's signals arrive in order, so a new connectionId means the older attempt is over. Bounded
 * per remote and in remotes, since the senders are untrusted.
 */
export class CandidateQueue {
  private readonly byRemote = new Map<string, { connectionId: string | undefined; candidates: PeerSignal[] }>();

  constructor(
    private readonly maxPerRemote = 64,
    private readonly maxRemotes = 256,
  ) {}

  /** Holds `candidate` for the attempt `connectionId` of `remote`. Returns false if it was dropped. */
  add(remote: string, connectionId: string | undefined, candidate: PeerSignal): boolean {
    let entry = this.byRemote.get(remote);
    if (!entry || entry.connectionId !== connectionId) {
      this.byRemote.delete(remote);
      if (this.byRemote.size >= this.maxRemotes) {
        const oldest = this.byRemote.keys().next();
        if (!oldest.done) this.byRemote.delete(oldest.value);
      }
      entry = { connectionId, candidates: [] };
      this.byRemote.set(remote, entry);
    }
    if (entry.candidates.length >= this.maxPerRemote) return false;
    entry.candidates.push(candidate);
    return true;
  }

  /** Removes and returns the candidates held for this attempt (none if another attempt's were held). */
  take(remote: string, connectionId: string | undefined): PeerSignal[] {
    const entry = this.byRemote.get(remote);
    if (!entry) return [];
    this.byRemote.delete(remote);
    return entry.connectionId === connectionId ? entry.candidates : [];
  }

  /** Forgets a remote's candidates (it left the room). */
  drop(remote: string): void {
    this.byRemote.delete(remote);
  }

  /** Forgets everything (signaling lost). */
  clear(): void {
    this.byRemote.clear();
  }

  /** Number of candidates held for `remote`. */
  size(remote: string): number {
    return this.byRemote.get(remote)?.candidates.length ?? 0;
  }
}

/*
 * Admission under `join --max-peers N`: which link to start, keep, replace or decline, as pure functions of one
 * member list, so they can be tested (and simulated over many arrivals) without WebRTC.
 *
 * `neighbours.ts` says which members a peer would ideally link to (ring + chords). A room that grows moves that
 * ideal set at every arrival (chord offsets grow with the member count), and following it exactly made links
 * flap. So:
 * - the bound is a hard limit on live links *and* attempts: nothing starts or is accepted above it;
 * - ring links (the successor and predecessor) are mandatory: they keep the overlay connected, and a peer at the
 *   bound always makes room for them;
 * - any other link is kept while it is "good enough": its ring distance is a ring or chord offset or lies within a
 *   factor of 2 of one (hysteresis). Only a link outside every such band is replaced, and only by an ideal
 *   neighbour. Both ends of a link see the same distance in the same member list, so they agree on it;
 * - above that, an offer is declined with an explicit message (docs/PROTOCOL.md §1.9).
 */
import { chooseNeighbours, ringOffsets, ringOrder } from './neighbours.js';

/** Hysteresis of kept links: a link at ring distance d is good enough if k / BAND <= d <= k * BAND for an offset k. */
export const KEEP_BAND = 2;

/** One peer's view of the overlay for one member list. */
export class Overlay {
  /** Members it would ideally link to (`chooseNeighbours`). */
  readonly ideal: ReadonlySet<string>;
  /** Its ring successor and predecessor: mandatory links. */
  readonly ring: ReadonlySet<string>;
  /** Every member fits the bound: a full mesh, nothing to choose. */
  readonly full: boolean;
  private readonly distance = new Map<string, number>();
  private readonly offsets: number[];

  /**
   * `members` may include `own`; `excluded` members (that declined us recently) are left out of the ideal set, so
   * the next best member takes their place.
   */
  constructor(
    readonly own: string,
    members: Iterable<string>,
    readonly maxPeers: number,
    excluded: ReadonlySet<string> = new Set(),
  ) {
    const order = ringOrder([own, ...members]);
    const n = order.length;
    const i = order.indexOf(own);
    order.forEach((id, j) => {
      if (id === own) return;
      const forward = (j - i + n) % n;
      this.distance.set(id, Math.min(forward, n - forward));
    });
    this.full = n - 1 <= maxPeers;
    this.offsets = [1, ...ringOffsets(n, maxPeers)];
    const candidates = order.filter((id) => !excluded.has(id));
    this.ideal = chooseNeighbours(own, candidates, maxPeers);
    const ring = new Set<string>();
    if (n > 1) {
      ring.add(order[(i + 1) % n]!);
      ring.add(order[(i - 1 + n) % n]!);
    }
    ring.delete(own);
    this.ring = ring;
  }

  /** Whether a link to `remote` is worth keeping: a ring link, an ideal one, or one within a chord's band. */
  keeps(remote: string): boolean {
    if (this.full || this.ring.has(remote) || this.ideal.has(remote)) return true;
    const d = this.distance.get(remote);
    if (d === undefined) return false; // not a member any more (as far as this list goes)
    return this.offsets.some((k) => d * KEEP_BAND >= k && d <= k * KEEP_BAND);
  }

  /**
   * The live link to give up for a link to `remote` when at the bound, or undefined when `remote` is not clearly
   * better than every live link. A ring neighbour displaces the worst non-ring link; an ideal neighbour displaces
   * only a link not worth keeping.
   */
  victimFor(remote: string, live: readonly string[]): string | undefined {
    if (this.full) return undefined;
    const ring = this.ring.has(remote);
    if (!ring && !this.ideal.has(remote)) return undefined;
    const candidates = live.filter((id) => id !== remote && !this.ring.has(id) && (ring || !this.keeps(id)));
    if (candidates.length === 0) return undefined;
    // Worst first: not kept, then not ideal, then farthest from every offset (the newest last in `live` on ties).
    const score = (id: string): number =>
      (this.keeps(id) ? 2 : 0) + (this.ideal.has(id) ? 1 : 0) - this.misfit(id) / (this.distance.size + 1);
    return candidates.reduce((worst, id) => (score(id) <= score(worst) ? id : worst));
  }

  /** How far a member's ring distance is from the nearest offset, as a ratio (0 = on an offset). */
  private misfit(id: string): number {
    const d = this.distance.get(id) ?? Number.MAX_SAFE_INTEGER;
    return Math.min(...this.offsets.map((k) => Math.abs(Math.log2(d / k))));
  }
}

/** What to do with a new link (an offer received, or one to start) when `live` links and attempts exist. */
export type Admission = { action: 'accept' } | { action: 'replace'; victim: string } | { action: 'decline' };

export function admit(overlay: Overlay, live: readonly string[], remote: string): Admission {
  if (live.includes(remote) || live.length < overlay.maxPeers) return { action: 'accept' };
  const victim = overlay.victimFor(remote, live);
  return victim === undefined ? { action: 'decline' } : { action: 'replace', victim };
}

/** The `signal.data` of a decline (docs/PROTOCOL.md §1.9), sent with the declined offer's connectionId. */
export const DECLINE_SIGNAL = { type: 'p2psync-decline', reason: 'max-peers' } as const;

export function isDecline(data: unknown): boolean {
  return typeof data === 'object' && data !== null && (data as { type?: unknown }).type === DECLINE_SIGNAL.type;
}

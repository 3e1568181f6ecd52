/*
 * What one signaling node knows about the members of its rooms that are connected to *other* nodes, and the
 * messages nodes exchange about them. Pure data structures and codecs, no Redis: the backplane in cluster.ts
 * feeds them from pub/sub and from the membership keys.
 */

/** A room member connected to another node. `at` is its join time (ms since the epoch) on that node. */
export interface RemoteMember {
  readonly node: string;
  readonly at: number;
}

/** A membership change or a node's goodbye, as published on the events channel. */
export type ClusterEvent =
  | { t: 'j'; n: string; r: string; p: string; a: number }
  | { t: 'l'; n: string; r: string; p: string }
  | { t: 'b'; n: string };

const isString = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 200;

/**
 * Parses an events-channel message; undefined for anything malformed. Redis is trusted more than a client
 * but less than our own memory: another tenant of the same Redis, or an old version, may publish here.
 */
export function parseClusterEvent(text: string): ClusterEvent | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const e = v as Record<string, unknown>;
  if (!isString(e.n)) return undefined;
  if (e.t === 'b') return { t: 'b', n: e.n };
  if (!isString(e.r) || !isString(e.p)) return undefined;
  if (e.t === 'l') return { t: 'l', n: e.n, r: e.r, p: e.p };
  if (e.t === 'j' && typeof e.a === 'number' && Number.isFinite(e.a)) return { t: 'j', n: e.n, r: e.r, p: e.p, a: e.a };
  return undefined;
}

/**
 * A relayed `signal` frame for a peer on another node: the receiver id, a newline, then the frame exactly as
 * the sender wrote it (kept verbatim, as a single node relays it, and never re-serialised).
 */
export function encodeRelay(receiverId: string, raw: string): string {
  return `${receiverId}\n${raw}`;
}

export function decodeRelay(message: string): { receiverId: string; raw: string } | undefined {
  const nl = message.indexOf('\n');
  if (nl <= 0 || nl > 200) return undefined;
  return { receiverId: message.slice(0, nl), raw: message.slice(nl + 1) };
}

/** The remote members of the rooms this node has local members in. */
export class RemoteView {
  private readonly rooms = new Map<string, Map<string, RemoteMember>>();

  constructor(private readonly self: string) {}

  /** Remote members of `room` in join order (time, then id, so every node orders them alike). */
  members(room: string): string[] {
    const m = this.rooms.get(room);
    if (!m || m.size === 0) return [];
    return [...m].sort((a, b) => a[1].at - b[1].at || (a[0] < b[0] ? -1 : 1)).map(([id]) => id);
  }

  /** Join times of the remote members, for merging with local members. */
  entries(room: string): Array<[string, RemoteMember]> {
    return [...(this.rooms.get(room) ?? [])];
  }

  count(room: string): number {
    return this.rooms.get(room)?.size ?? 0;
  }

  /** The node serving `peerId` in `room`, if it is a remote member there. */
  nodeOf(room: string, peerId: string): string | undefined {
    return this.rooms.get(room)?.get(peerId)?.node;
  }

  get size(): number {
    let n = 0;
    for (const m of this.rooms.values()) n += m.size;
    return n;
  }

  /** Applies an event; returns the rooms whose member list changed (and only rooms in `interested`). */
  apply(e: ClusterEvent, interested: (room: string) => boolean): string[] {
    if (e.n === this.self) return [];
    if (e.t === 'b') return this.dropNode(e.n);
    if (!interested(e.r)) return [];
    let m = this.rooms.get(e.r);
    if (e.t === 'j') {
      if (!m) this.rooms.set(e.r, (m = new Map()));
      const before = m.get(e.p);
      m.set(e.p, { node: e.n, at: e.a });
      return before?.node === e.n ? [] : [e.r];
    }
    if (!m || m.get(e.p)?.node !== e.n) return [];
    m.delete(e.p);
    if (m.size === 0) this.rooms.delete(e.r);
    return [e.r];
  }

  /** Replaces a room's remote members with a snapshot; returns true when the member set changed. */
  replace(room: string, snapshot: Map<string, RemoteMember>): boolean {
    const before = this.rooms.get(room) ?? new Map<string, RemoteMember>();
    snapshot.delete(this.self);
    for (const [id, member] of snapshot) if (member.node === this.self) snapshot.delete(id);
    const changed =
      before.size !== snapshot.size ||
      [...snapshot.keys()].some((id) => before.get(id)?.node !== snapshot.get(id)!.node);
    if (snapshot.size === 0) this.rooms.delete(room);
    else this.rooms.set(room, snapshot);
    return changed;
  }

  /** Forgets a room (no local member left in it). */
  forget(room: string): void {
    this.rooms.delete(room);
  }

  /** Drops every member of `node` (it said goodbye); returns the rooms that changed. */
  dropNode(node: string): string[] {
    const changed: string[] = [];
    for (const [room, m] of this.rooms) {
      let hit = false;
      for (const [id, member] of m) {
        if (member.node !== node) continue;
        m.delete(id);
        hit = true;
      }
      if (m.size === 0) this.rooms.delete(room);
      if (hit) changed.push(room);
    }
    return changed;
  }

  /** Drops everything (Redis has been unreachable for longer than the membership expiry); returns changed rooms. */
  clear(): string[] {
    const rooms = [...this.rooms.keys()];
    this.rooms.clear();
    return rooms;
  }
}

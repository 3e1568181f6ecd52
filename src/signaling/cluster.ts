/*
 * The Redis backplane of `p2psync signal --redis URL`: several signaling nodes share their rooms.
 *
 * Redis layout (every key under `prefix`, default `p2psync:`):
 * - `{p}m:{room}:{node}`  hash peerId -> join time (ms): the members one node has in one room; expires after
 *                         `memberTtlMs` unless the node refreshes it, so a node that dies leaves no ghosts.
 * - `{p}r:{room}`         sorted set node -> expiry time (ms): the nodes with members in the room.
 * - `{p}events`           pub/sub channel: joins, leaves and goodbyes, so other nodes update at once.
 * - `{p}node:{node}`      pub/sub channel: `signal` frames for peers connected to that node.
 *
 * Pub/sub makes changes fast; the keys make them durable. Every `refreshMs` a node rewrites its own
 * memberships (which also repopulates a restarted, empty Redis) and re-reads the rooms it serves, which
 * drops the members of nodes that died without a goodbye once their keys expired. Nothing here ever
 * throws into the hub: with Redis down, the node serves its local rooms alone and reports itself unhealthy.
 */
import { Redis } from 'ioredis';
import { P2PSyncError } from '../core/errors.js';
import type { EventSink } from '../core/events.js';
import type { SignalServerEvent } from './server-hub.js';
import { createPeerId } from './server-protocol.js';
import {
  decodeRelay,
  encodeRelay,
  parseClusterEvent,
  RemoteView,
  type ClusterEvent,
  type RemoteMember,
} from './cluster-view.js';
import { redactUrl } from './client-options.js';

export interface ClusterOptions {
  /** `redis://[:password@]host:port[/db]` or `rediss://` (TLS). */
  url: string;
  /** Key and channel prefix, so several clusters can share one Redis. Default `p2psync:`. */
  prefix?: string;
  /** How long a node's memberships outlive it in Redis. Default 15 s. */
  memberTtlMs?: number;
  /** How often a node refreshes its memberships and re-reads its rooms. Default a third of the TTL. */
  refreshMs?: number;
}

/** What the backplane needs from the hub. */
export interface ClusterHub {
  /** Rooms with at least one local member. */
  localRooms(): Iterable<string>;
  /** Whether `room` has a local member. */
  hasLocalRoom(room: string): boolean;
  /** Local members of `room` and their join times (ms since the epoch). */
  localMembers(room: string): Array<[string, number]>;
  /** The remote member list of `room` changed: send `joined` to its local members. */
  remoteChanged(room: string): void;
  /** A relayed frame for a local peer; false if no such peer is connected here. */
  deliver(receiverId: string, raw: string): boolean;
}

export interface ClusterHealth {
  status: 'ok' | 'down';
  /** Why Redis is down (no credentials in it). */
  error?: string;
  /** Peers of this node's rooms that are connected to other nodes. */
  remotePeers: number;
}

export interface ClusterCounters {
  relayedOut: number;
  relayedIn: number;
  errors: number;
}

export type ClusterEventSink = EventSink<Extract<SignalServerEvent, { event: `redis-${string}` }>>;

export const DEFAULT_MEMBER_TTL_MS = 15_000;
const DEFAULT_PREFIX = 'p2psync:';

/** Validates options without connecting (E_BAD_OPTION). */
export function validateClusterOptions(o: ClusterOptions): void {
  let url: URL;
  try {
    url = new URL(o.url);
  } catch {
    throw new P2PSyncError('E_BAD_OPTION', `invalid Redis URL "${redactUrl(o.url)}": expected redis://host:port`, {
      option: 'redis',
    });
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new P2PSyncError(
      'E_BAD_OPTION',
      `invalid Redis URL "${redactUrl(o.url)}": the scheme must be redis:// or rediss://`,
      { option: 'redis' },
    );
  }
  for (const [name, v] of [
    ['memberTtlMs', o.memberTtlMs],
    ['refreshMs', o.refreshMs],
  ] as const) {
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= 100)) {
      throw new P2PSyncError('E_BAD_OPTION', `${name} must be a whole number of at least 100 ms, got ${String(v)}`, {
        option: name,
      });
    }
  }
}

export class RedisBackplane {
  readonly node = createPeerId();
  readonly view = new RemoteView(this.node);
  readonly counters: ClusterCounters = { relayedOut: 0, relayedIn: 0, errors: 0 };
  readonly url: string;
  private readonly prefix: string;
  private readonly ttlMs: number;
  private readonly cmd: Redis;
  private readonly sub: Redis;
  private readonly timer: NodeJS.Timeout;
  private hub: ClusterHub | undefined;
  /** Bumped by every event of a room, so a snapshot read while events arrived is not applied over them. */
  private readonly epochs = new Map<string, number>();
  private lastError: string | undefined;
  private downSince: number | undefined = Date.now();
  private wasUp = false;
  private closed: Promise<void> | undefined;

  constructor(
    options: ClusterOptions,
    private readonly emit: ClusterEventSink,
  ) {
    validateClusterOptions(options);
    this.url = redactUrl(options.url);
    this.prefix = options.prefix ?? DEFAULT_PREFIX;
    this.ttlMs = options.memberTtlMs ?? DEFAULT_MEMBER_TTL_MS;
    const redisOptions = {
      // With Redis down, commands fail at once instead of piling up: the node keeps serving its local rooms
      // and the next refresh rewrites everything anyway.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      // Reconnect forever, at most every 2 s (ioredis's default gives up never either, but waits up to 2 s).
      retryStrategy: (times: number) => Math.min(100 * times, 2_000),
      connectTimeout: 5_000,
      lazyConnect: false,
    };
    this.cmd = new Redis(options.url, { ...redisOptions, connectionName: `p2psync-${this.node}` });
    // The subscriber only ever sends SUBSCRIBE: queue it until the first connection (ioredis resubscribes after
    // every reconnect by itself).
    this.sub = new Redis(options.url, {
      ...redisOptions,
      enableOfflineQueue: true,
      connectionName: `p2psync-${this.node}-sub`,
    });
    for (const conn of [this.cmd, this.sub]) {
      conn.on('error', (err: Error) => this.failed(err));
      conn.on('ready', () => this.stateChanged());
      conn.on('close', () => this.stateChanged());
    }
    this.sub.on('message', (channel: string, message: string) => this.onMessage(channel, message));
    this.sub.subscribe(this.eventsChannel, this.nodeChannel).catch((err: Error) => this.failed(err));
    this.timer = setInterval(() => void this.refresh(), options.refreshMs ?? Math.floor(this.ttlMs / 3)).unref();
  }

  bind(hub: ClusterHub): void {
    this.hub = hub;
  }

  get up(): boolean {
    return this.cmd.status === 'ready' && this.sub.status === 'ready';
  }

  health(): ClusterHealth {
    const h: ClusterHealth = { status: this.up ? 'ok' : 'down', remotePeers: this.view.size };
    if (!this.up && this.lastError) h.error = this.lastError;
    return h;
  }

  /** A local peer joined `room` at `at`: record it and tell the other nodes. */
  joined(room: string, peerId: string, at: number, firstLocal: boolean): void {
    if (!this.up) return;
    const exp = Date.now() + this.ttlMs;
    const event: ClusterEvent = { t: 'j', n: this.node, r: room, p: peerId, a: at };
    void this.run(
      this.cmd
        .multi()
        .hset(this.memberKey(room), peerId, String(at))
        .pexpire(this.memberKey(room), this.ttlMs)
        .zadd(this.roomKey(room), exp, this.node)
        .pexpire(this.roomKey(room), this.ttlMs)
        .publish(this.eventsChannel, JSON.stringify(event))
        .exec(),
    );
    if (firstLocal) void this.load([room]);
  }

  /** A local peer left `room`; `lastLocal` when no local member is left there. */
  left(room: string, peerId: string, lastLocal: boolean): void {
    if (lastLocal) {
      this.view.forget(room);
      this.epochs.delete(room);
    }
    if (!this.up) return;
    const event: ClusterEvent = { t: 'l', n: this.node, r: room, p: peerId };
    const tx = this.cmd.multi().hdel(this.memberKey(room), peerId);
    if (lastLocal) tx.del(this.memberKey(room)).zrem(this.roomKey(room), this.node);
    void this.run(tx.publish(this.eventsChannel, JSON.stringify(event)).exec());
  }

  /** Sends a `signal` frame to a peer on `node`; false when Redis is down (the frame is lost, as on a network). */
  relay(node: string, receiverId: string, raw: string): boolean {
    if (!this.up) return false;
    this.counters.relayedOut += 1;
    void this.run(this.cmd.publish(this.prefix + 'node:' + node, encodeRelay(receiverId, raw)));
    return true;
  }

  /** Says goodbye (others drop our members at once), removes our keys and disconnects. Idempotent. */
  close(timeoutMs = 1_000): Promise<void> {
    this.closed ??= (async () => {
      clearInterval(this.timer);
      if (this.up) {
        const tx = this.cmd.multi();
        for (const room of this.hub?.localRooms() ?? [])
          tx.del(this.memberKey(room)).zrem(this.roomKey(room), this.node);
        tx.publish(this.eventsChannel, JSON.stringify({ t: 'b', n: this.node } satisfies ClusterEvent));
        await Promise.race([tx.exec().catch(() => undefined), delay(timeoutMs)]);
      }
      this.cmd.disconnect();
      this.sub.disconnect();
    })();
    return this.closed;
  }

  private get eventsChannel(): string {
    return this.prefix + 'events';
  }

  private get nodeChannel(): string {
    return this.prefix + 'node:' + this.node;
  }

  private memberKey(room: string): string {
    return `${this.prefix}m:${room}:${this.node}`;
  }

  private roomKey(room: string): string {
    return `${this.prefix}r:${room}`;
  }

  private onMessage(channel: string, message: string): void {
    const hub = this.hub;
    if (!hub || this.closed) return;
    if (channel === this.nodeChannel) {
      const relay = decodeRelay(message);
      if (relay && hub.deliver(relay.receiverId, relay.raw)) this.counters.relayedIn += 1;
      return;
    }
    const event = parseClusterEvent(message);
    if (!event) return;
    if (event.t !== 'b' && hub.hasLocalRoom(event.r)) this.epochs.set(event.r, (this.epochs.get(event.r) ?? 0) + 1);
    for (const room of this.view.apply(event, (r) => hub.hasLocalRoom(r))) hub.remoteChanged(room);
  }

  /** Rewrites our memberships (with fresh expiry) and re-reads every room we serve. */
  private async refresh(): Promise<void> {
    const hub = this.hub;
    if (!hub || this.closed) return;
    if (!this.up) {
      // Past the expiry, other nodes' members may be long gone: stop offering them to our peers.
      if (this.downSince !== undefined && Date.now() - this.downSince > this.ttlMs) {
        for (const room of this.view.clear()) hub.remoteChanged(room);
      }
      return;
    }
    const rooms = [...hub.localRooms()];
    if (rooms.length === 0) return;
    const exp = Date.now() + this.ttlMs;
    const tx = this.cmd.multi();
    for (const room of rooms) {
      const key = this.memberKey(room);
      tx.del(key)
        .hset(key, ...hub.localMembers(room).flatMap(([id, at]) => [id, String(at)]))
        .pexpire(key, this.ttlMs);
      tx.zadd(this.roomKey(room), exp, this.node).pexpire(this.roomKey(room), this.ttlMs);
    }
    if (!(await this.run(tx.exec()))) return;
    await this.load(rooms);
  }

  /** Reads the remote members of `rooms` from Redis and applies them unless events arrived meanwhile. */
  private async load(rooms: string[]): Promise<void> {
    const hub = this.hub;
    if (!hub || !this.up || rooms.length === 0) return;
    const epochs = rooms.map((r) => this.epochs.get(r) ?? 0);
    const now = Date.now();
    const listing = this.cmd.pipeline();
    for (const room of rooms)
      listing.zremrangebyscore(this.roomKey(room), '-inf', now).zrangebyscore(this.roomKey(room), now, '+inf');
    const listed = await this.run(listing.exec());
    if (!listed) return;
    const reads = this.cmd.pipeline();
    const asked: Array<[number, string]> = [];
    rooms.forEach((room, i) => {
      const nodes = listed[2 * i + 1]?.[1];
      if (!Array.isArray(nodes)) return;
      for (const node of nodes as string[]) {
        if (node === this.node) continue;
        asked.push([i, node]);
        reads.hgetall(`${this.prefix}m:${room}:${node}`);
      }
    });
    const read = asked.length > 0 ? await this.run(reads.exec()) : [];
    if (!read) return;
    const snapshots = rooms.map(() => new Map<string, RemoteMember>());
    asked.forEach(([i, node], k) => {
      const hash = read[k]?.[1];
      if (typeof hash !== 'object' || hash === null) return;
      for (const [peerId, at] of Object.entries(hash as Record<string, string>)) {
        // A peer that moved nodes (same claimed id) is listed by its old node until that node's keys expire:
        // the newer membership is the live one.
        const member = { node, at: Number(at) || 0 };
        const seen = snapshots[i]!.get(peerId);
        if (!seen || seen.at < member.at) snapshots[i]!.set(peerId, member);
      }
    });
    rooms.forEach((room, i) => {
      // A room emptied locally meanwhile is not ours any more; one with fresh events is newer than this read.
      if (!hub.hasLocalRoom(room) || (this.epochs.get(room) ?? 0) !== epochs[i]) return;
      if (this.view.replace(room, snapshots[i]!)) hub.remoteChanged(room);
    });
  }

  /** Awaits a Redis reply; a failure is counted and reported, never thrown. Returns undefined on failure. */
  private async run<T>(p: Promise<T>): Promise<T | undefined> {
    try {
      const result = await p;
      // exec() reports per-command errors inside its result.
      if (Array.isArray(result) && result.some((r) => Array.isArray(r) && r[0]))
        throw (result.find((r) => Array.isArray(r) && r[0]) as [Error])[0];
      return result;
    } catch (err) {
      this.failed(err as Error, false);
      return undefined;
    }
  }

  private failed(err: Error, connection = true): void {
    this.counters.errors += 1;
    this.lastError = (err.message || String(err)).slice(0, 300);
    if (!connection) this.emit({ event: 'redis-error', message: this.lastError });
  }

  private stateChanged(): void {
    if (this.closed) return;
    const up = this.up;
    if (up === this.wasUp) return;
    this.wasUp = up;
    this.downSince = up ? undefined : Date.now();
    this.emit(
      up
        ? { event: 'redis-up', url: this.url }
        : { event: 'redis-down', url: this.url, message: this.lastError ?? 'connection closed' },
    );
    // Back from an outage (or a restart that emptied Redis): rewrite our rooms and catch up on missed events.
    if (up) void this.refresh();
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

import { addListener, type Unsubscribe } from '../core/events.js';
import { P2PSyncError } from '../core/errors.js';
import { randomToken } from '../core/random.js';
import type { SignalChannel, SignalMessage, SignalStatus } from '../core/signal.js';

/** What the hub does with one relayed signal: deliver it or drop it (tests use this to inject failures). */
export type SignalFilter = (message: {
  from: string;
  to: string;
  data: unknown;
  connectionId: string | undefined;
}) => 'deliver' | 'drop';

/**
 * An in-process signaling hub for tests: one room per hub, server-assigned ids, the full member list on every
 * join or leave, and asynchronous delivery (setImmediate) like a real WebSocket. Messages to a peer that left
 * (or reconnected under a new id) before delivery are dropped, as the real server drops them.
 */
export class MemorySignalHub {
  private readonly members = new Map<string, MemorySignalClient>();
  /** Inspect or drop relayed signals; `deliver` by default. */
  filter: SignalFilter = () => 'deliver';
  /** Signals relayed so far (after the filter), for assertions. */
  relayed = 0;

  /** A new client, not yet connected. `ids` are the peer ids it gets on its successive connects. */
  createClient(ids: string[] = []): MemorySignalClient {
    return new MemorySignalClient(this, ids);
  }

  /** Current member ids in join order. */
  memberIds(): string[] {
    return [...this.members.keys()];
  }

  /** @internal */
  join(client: MemorySignalClient, id: string): void {
    if (this.members.has(id)) throw new P2PSyncError('E_BAD_OPTION', `peer id ${id} already in use`, { peerId: id });
    this.members.set(id, client);
    this.broadcast();
  }

  /** @internal */
  leave(id: string): void {
    if (this.members.delete(id)) this.broadcast();
  }

  /** @internal */
  relay(from: string, to: string, data: unknown, connectionId: string | undefined): void {
    if (this.filter({ from, to, data, connectionId }) === 'drop') return;
    this.relayed++;
    const message: SignalMessage = connectionId === undefined ? { from, data } : { from, data, connectionId };
    setImmediate(() => this.members.get(to)?.receive(message, to));
  }

  private broadcast(): void {
    const ids = this.memberIds();
    for (const [id, client] of this.members) setImmediate(() => client.receiveJoined(ids, id));
  }
}

/** One peer's view of a MemorySignalHub; implements SignalChannel. */
export class MemorySignalClient implements SignalChannel {
  private id: string | undefined;
  private roomPeers: string[] = [];
  private readonly peerHandlers = new Set<(peerIds: string[]) => void>();
  private readonly signalHandlers = new Set<(message: SignalMessage) => void>();
  private readonly statusHandlers = new Set<(status: SignalStatus) => void>();

  constructor(
    private readonly hub: MemorySignalHub,
    private readonly ids: string[],
  ) {}

  get peerId(): string | undefined {
    return this.id;
  }

  get peers(): readonly string[] {
    return this.roomPeers;
  }

  /** Connects (a new peer id each time, as with a real server) and joins the hub's room. */
  connect(): string {
    if (this.id !== undefined) return this.id;
    const id = this.ids.shift() ?? randomToken(12);
    this.id = id;
    // status first, then `joined`, in the order a real server's `init` and `joined` arrive
    setImmediate(() => {
      if (this.id === id) for (const h of [...this.statusHandlers]) h({ connected: true, peerId: id });
    });
    this.hub.join(this, id);
    return id;
  }

  /** Simulates losing the signaling connection: leaves the room and forgets the id. */
  disconnect(): void {
    const id = this.id;
    if (id === undefined) return;
    this.id = undefined;
    this.roomPeers = [];
    this.hub.leave(id);
    setImmediate(() => {
      if (this.id === undefined) for (const h of [...this.statusHandlers]) h({ connected: false });
    });
  }

  onPeers(handler: (peerIds: string[]) => void): Unsubscribe {
    return addListener(this.peerHandlers, handler);
  }

  onSignal(handler: (message: SignalMessage) => void): Unsubscribe {
    return addListener(this.signalHandlers, handler);
  }

  onStatus(handler: (status: SignalStatus) => void): Unsubscribe {
    return addListener(this.statusHandlers, handler);
  }

  sendSignal(to: string, data: unknown, connectionId?: string): void {
    if (this.id === undefined) return;
    this.hub.relay(this.id, to, data, connectionId);
  }

  /** @internal */
  receive(message: SignalMessage, to: string): void {
    if (to !== this.id) return;
    for (const h of [...this.signalHandlers]) h(message);
  }

  /** @internal */
  receiveJoined(ids: string[], to: string): void {
    if (to !== this.id) return;
    this.roomPeers = ids.filter((id) => id !== to);
    for (const h of [...this.peerHandlers]) h([...this.roomPeers]);
  }
}

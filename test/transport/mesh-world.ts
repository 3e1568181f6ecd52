import type { PeerLink } from '../../src/core/link.js';
import type { SignalChannel } from '../../src/core/signal.js';
import { MemorySignalHub, type MemorySignalClient } from '../../src/transport/memory-signal.js';
import { createMesh, type Mesh, type MeshEvent, type MeshOptions } from '../../src/transport/mesh.js';
import { LOOPBACK, NET_TIMEOUT_MS, TEST_CONNECT_TIMEOUT_MS, waitFor } from './helpers.js';

/** One peer of a test world: a memory signaling client, its mesh, and what the mesh reported. */
export interface TestPeer {
  readonly client: MemorySignalClient;
  readonly mesh: Mesh;
  readonly events: MeshEvent[];
  /** Every link announced through onLink, in order. */
  readonly announced: PeerLink[];
  /** Frames received per remote peer id, over any link. */
  readonly received: Map<string, string[]>;
}

/**
 * Several meshes in one process on one memory signaling hub, with a single `until` that re-checks a condition
 * whenever any mesh reports an event, a link closes or a frame arrives.
 */
export class MeshWorld {
  readonly hub = new MemorySignalHub();
  readonly peers: TestPeer[] = [];
  private waiters: Array<() => void> = [];

  /**
   * Adds a peer; it connects to signaling unless `connect` is false. `ids`: its successive peer ids. `wrap` puts
   * a layer between the mesh and its memory signaling client (sealed signaling).
   */
  add(
    ids: string[] = [],
    options: Partial<MeshOptions> = {},
    connect = true,
    wrap: (c: SignalChannel) => SignalChannel = (c) => c,
  ): TestPeer {
    const client = this.hub.createClient(ids);
    const events: MeshEvent[] = [];
    const announced: PeerLink[] = [];
    const received = new Map<string, string[]>();
    const mesh = createMesh({
      signal: wrap(client),
      ice: LOOPBACK,
      connectTimeoutMs: TEST_CONNECT_TIMEOUT_MS,
      ...options,
    });
    mesh.events$.subscribe((e) => {
      events.push(e);
      this.notify();
    });
    mesh.onLink((link) => {
      announced.push(link);
      link.onFrame((f) => {
        const list = received.get(link.remotePeerId) ?? [];
        list.push(f);
        received.set(link.remotePeerId, list);
        this.notify();
      });
      link.onClose(() => this.notify());
      this.notify();
    });
    client.onPeers(() => this.notify());
    const peer = { client, mesh, events, announced, received };
    this.peers.push(peer);
    if (connect) client.connect();
    return peer;
  }

  notify(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves once `predicate` holds (checked now and after every event in the world). */
  until(what: string, predicate: () => boolean, ms = NET_TIMEOUT_MS): Promise<void> {
    return waitFor<void>(
      what,
      (done) => {
        const check = (): void => {
          if (predicate()) done();
          else this.waiters.push(check);
        };
        check();
      },
      ms,
    );
  }

  /** The remote ids `peer` has open links to, sorted. */
  static linkedTo(peer: TestPeer): string[] {
    return peer.mesh
      .links()
      .map((l) => l.remotePeerId)
      .sort();
  }

  async dispose(): Promise<void> {
    for (const p of this.peers) p.client.disconnect();
    await Promise.all(this.peers.map((p) => p.mesh.close()));
    this.waiters = [];
  }
}

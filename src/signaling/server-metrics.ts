import type { RedisBackplane } from './cluster.js';
import { FRAME_REJECT_REASONS, type FrameRejectReason } from './server-protocol.js';

/** Why an HTTP upgrade was refused; label values of `p2psync_signal_upgrades_refused_total`. */
export type UpgradeRefusal = 'unauthorized' | 'max_connections' | 'shutting_down' | 'bad_handshake';
export const UPGRADE_REFUSALS: readonly UpgradeRefusal[] = [
  'unauthorized',
  'max_connections',
  'shutting_down',
  'bad_handshake',
];

/** Why a socket went away; label values of `p2psync_signal_disconnects_total`. */
export type DisconnectKind =
  'client' | 'violation' | 'idle' | 'heartbeat' | 'slow_consumer' | 'shutdown' | 'error' | 'replaced';
export const DISCONNECT_KINDS: readonly DisconnectKind[] = [
  'client',
  'replaced',
  'violation',
  'idle',
  'heartbeat',
  'slow_consumer',
  'shutdown',
  'error',
];

/** Point-in-time sizes, read from the hub when a scrape or health check comes in. */
export interface SignalGauges {
  sockets: number;
  rooms: number;
  /** Room memberships: a socket in two rooms counts twice. */
  peers: number;
  uptimeSeconds: number;
}

function zeroed<K extends string>(keys: readonly K[]): Map<K, number> {
  return new Map(keys.map((k) => [k, 0]));
}

/** Counters of one server instance. Labelled series start at 0 so dashboards see them before the first event. */
export class SignalMetrics {
  connectionsTotal = 0;
  framesReceived = 0;
  framesRelayed = 0;
  framesSent = 0;
  readonly framesRejected = zeroed(FRAME_REJECT_REASONS);
  readonly upgradesRefused = zeroed(UPGRADE_REFUSALS);
  readonly disconnects = zeroed(DISCONNECT_KINDS);

  reject(reason: FrameRejectReason): void {
    this.framesRejected.set(reason, (this.framesRejected.get(reason) ?? 0) + 1);
  }

  refuse(reason: UpgradeRefusal): void {
    this.upgradesRefused.set(reason, (this.upgradesRefused.get(reason) ?? 0) + 1);
  }

  disconnected(kind: DisconnectKind): void {
    this.disconnects.set(kind, (this.disconnects.get(kind) ?? 0) + 1);
  }

  /** Prometheus text exposition format 0.0.4. */
  render(g: SignalGauges, cluster?: RedisBackplane): string {
    const out: string[] = [];
    const metric = (name: string, type: 'gauge' | 'counter', help: string, samples: Array<[string, number]>): void => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) out.push(`${name}${labels} ${value}`);
    };
    const labelled = (label: string, m: Map<string, number>): Array<[string, number]> =>
      [...m].map(([k, v]) => [`{${label}="${k}"}`, v]);
    metric('p2psync_signal_uptime_seconds', 'gauge', 'Seconds since the server started listening.', [
      ['', Math.floor(g.uptimeSeconds)],
    ]);
    metric('p2psync_signal_sockets', 'gauge', 'Open WebSocket connections.', [['', g.sockets]]);
    metric('p2psync_signal_rooms', 'gauge', 'Rooms with at least one member.', [['', g.rooms]]);
    metric('p2psync_signal_peers', 'gauge', 'Room memberships (a socket in two rooms counts twice).', [['', g.peers]]);
    metric('p2psync_signal_connections_total', 'counter', 'WebSocket connections accepted.', [
      ['', this.connectionsTotal],
    ]);
    metric('p2psync_signal_frames_received_total', 'counter', 'Frames received from clients.', [
      ['', this.framesReceived],
    ]);
    metric('p2psync_signal_frames_relayed_total', 'counter', 'signal frames relayed to their receiver.', [
      ['', this.framesRelayed],
    ]);
    metric('p2psync_signal_frames_sent_total', 'counter', 'Frames sent to clients (init, joined, relayed signal).', [
      ['', this.framesSent],
    ]);
    metric(
      'p2psync_signal_frames_rejected_total',
      'counter',
      'Frames rejected or dropped, by reason.',
      labelled('reason', this.framesRejected),
    );
    metric(
      'p2psync_signal_upgrades_refused_total',
      'counter',
      'WebSocket upgrades refused, by reason.',
      labelled('reason', this.upgradesRefused),
    );
    metric(
      'p2psync_signal_disconnects_total',
      'counter',
      'Sockets closed, by cause.',
      labelled('reason', this.disconnects),
    );
    if (cluster) {
      const c = cluster.counters;
      metric('p2psync_signal_redis_up', 'gauge', 'Whether this node is connected to Redis (1) or not (0).', [
        ['', cluster.up ? 1 : 0],
      ]);
      metric('p2psync_signal_remote_peers', 'gauge', "Members of this node's rooms connected to other nodes.", [
        ['', cluster.view.size],
      ]);
      metric('p2psync_signal_cluster_relayed_total', 'counter', 'signal frames relayed through Redis, by direction.', [
        ['{direction="out"}', c.relayedOut],
        ['{direction="in"}', c.relayedIn],
      ]);
      metric('p2psync_signal_redis_errors_total', 'counter', 'Failed Redis connections and commands.', [
        ['', c.errors],
      ]);
    }
    return out.join('\n') + '\n';
  }
}

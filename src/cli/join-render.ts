import type { ChalkInstance } from 'chalk';
import type { SyncEvent } from '../core/events.js';
import type { Output } from './output.js';

/** One human line for an event, or undefined for events that only feed the status line. */
export function renderJoinEvent(e: SyncEvent, c: ChalkInstance): string | undefined {
  switch (e.event) {
    case 'signaling-hosted':
      return c.dim(`hosting the signaling server at ${e.url} (nothing answered there)`);
    case 'signaling-connected':
      return c.dim(`signaling: connected to ${e.url} as ${e.peerId}`);
    case 'signaling-disconnected':
      return c.yellow(
        `signaling: disconnected from ${e.url} (${e.reason}); retrying in ${Math.round(e.retryInMs / 100) / 10} s`,
      );
    case 'joined':
      return `${c.green('joined')} topic ${c.bold(e.topic)} with ${e.store} (conflicts: ${e.conflict})`;
    case 'peer-connected':
      return `${c.green('+')} peer ${e.peerId} (we are ${e.role}${e.path ? `; ${e.path.relayed ? 'relayed' : 'direct'}, ${e.path.local.type} ${e.path.local.protocol} -> ${e.path.remote.type} ${e.path.remote.address}:${e.path.remote.port}` : ''})`;
    case 'peer-disconnected':
      return `${c.red('-')} peer ${e.peerId} (${e.reason})`;
    case 'peer-rejected':
      return c.yellow(`rejected peer ${e.peerId}${e.deviceId ? ` (device ${e.deviceId})` : ''}: ${e.reason}`);
    case 'signal-rejected':
      return c.yellow(`dropped a signal from ${e.peerId}: ${e.reason} (wrong secret or no secret?)`);
    case 'conflict':
      return c.yellow(
        `conflict on ${e.id}: ${e.winner === 'merged' ? 'merged' : `${e.winner} version won`} (${e.strategy})` +
          (e.kept.length > 0
            ? `; kept the losing ${e.kept.map((k) => k.side).join(' and ')} version (p2psync conflicts show ${e.id})`
            : ''),
      );
    case 'outside-edit':
      return c.dim(`file changed outside p2psync: ${e.created} created, ${e.updated} updated, ${e.deleted} deleted`);
    case 'synced':
      return `${c.green('in sync')} with ${e.peers} peer${e.peers === 1 ? '' : 's'} (${e.documents} documents)`;
    case 'warning':
      return c.yellow(`p2psync: warning: ${e.message}`) + c.dim(` [${e.code}]`);
    case 'error':
      return c.red(`p2psync: ${e.message}`) + c.dim(` [${e.code}]`);
    case 'closed':
      return c.dim(`closed (${e.reason})`);
    default:
      return undefined;
  }
}

/** The spinner line on a TTY: peers and documents in and out. */
export class StatusLine {
  private peers = new Set<string>();
  private pulled = 0;
  private pushed = 0;

  constructor(private readonly out: Output) {}

  update(e: SyncEvent): void {
    switch (e.event) {
      case 'peer-connected':
        this.peers.add(e.peerId);
        break;
      case 'peer-disconnected':
        this.peers.delete(e.peerId);
        break;
      case 'pulled':
        this.pulled += e.count;
        break;
      case 'pushed':
        this.pushed += e.count;
        break;
      case 'closed':
        this.stop();
        return;
      default:
        return;
    }
    this.out.status(
      `${this.peers.size} peer${this.peers.size === 1 ? '' : 's'} · ${this.pulled} in · ${this.pushed} out`,
    );
  }

  stop(): void {
    this.out.stopStatus();
  }
}

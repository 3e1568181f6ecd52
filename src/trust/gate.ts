import type { Unsubscribe } from '../core/events.js';
import { LinkRejected, type LinkCredentials, type LinkGate, type PeerLink } from '../core/link.js';
import { TrustHandshake } from './handshake.js';

/** A peer that has not finished the handshake this long after the data channel opened is rejected. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

export interface TrustGateOptions {
  /** Room the peers met in (part of the handshake transcript). */
  room: string;
  /** Handshake key; without it there is no handshake (allowlist only). */
  authKey?: Uint8Array | undefined;
  /** Device ids served; without it any peer that passes the handshake is. */
  allow?: ReadonlySet<string> | undefined;
  timeoutMs?: number | undefined;
  /** Told about every rejection (the gate's promise rejects too). */
  onRejected?: ((link: PeerLink, reason: string, remoteFingerprint: string | undefined) => void) | undefined;
}

/**
 * The LinkGate of a topic: checks the remote's verified certificate fingerprint against the allowlist, then runs
 * the trust handshake over the link. No frame reaches the caller (replication) before both checks passed; frames
 * that follow the remote's proof are kept for it, in order.
 */
export function createTrustGate(o: TrustGateOptions): LinkGate {
  const timeoutMs = o.timeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  return async (link, credentials) => {
    try {
      const remote = credentials.remoteFingerprint;
      if (!remote) throw new LinkRejected('the remote certificate fingerprint is unknown');
      if (o.allow && !o.allow.has(remote)) throw new LinkRejected(`device id ${remote} is not in the allowlist`);
      if (!o.authKey) return link;
      return await handshake(link, credentials, o.room, o.authKey, timeoutMs);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      o.onRejected?.(link, reason, credentials.remoteFingerprint);
      throw err instanceof LinkRejected ? err : new LinkRejected(reason);
    }
  };
}

function handshake(
  link: PeerLink,
  c: LinkCredentials,
  room: string,
  authKey: Uint8Array,
  timeoutMs: number,
): Promise<PeerLink> {
  if (!c.localFingerprint) return Promise.reject(new LinkRejected('our own certificate fingerprint is unknown'));
  const hs = new TrustHandshake({
    authKey,
    room,
    role: c.initiator ? 'initiator' : 'responder',
    localFingerprint: c.localFingerprint,
    remoteFingerprint: c.remoteFingerprint!,
  });
  const trusted = new TrustedLink(link);
  return new Promise<PeerLink>((resolve, reject) => {
    let settled = false;
    const settle = (error?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      offClose();
      if (error === undefined) resolve(trusted);
      else reject(new LinkRejected(error));
    };
    const timer = setTimeout(() => settle(`trust handshake timed out after ${timeoutMs} ms`), timeoutMs);
    const offClose = link.onClose((reason) =>
      settle(`link closed during the trust handshake${reason ? `: ${reason.message}` : ''}`),
    );
    link.onFrame((frame) => {
      if (hs.status === 'done') return trusted.deliver(frame);
      if (settled) return; // failed or timed out: read nothing more
      const step = hs.receive(frame);
      if (step.status === 'failed') return settle(`trust handshake failed: ${step.reason}`);
      for (const out of step.send) link.send(out);
      if (step.status === 'done') settle();
    });
    link.send(hs.start());
  });
}

/** The link handed on after a successful handshake: the same channel, with the handshake's frames consumed. */
class TrustedLink implements PeerLink {
  private handler: ((frame: string) => void) | undefined;
  private readonly early: string[] = [];

  constructor(private readonly inner: PeerLink) {}

  get remotePeerId(): string {
    return this.inner.remotePeerId;
  }
  get maxMessageSize(): number {
    return this.inner.maxMessageSize;
  }
  get open(): boolean {
    return this.inner.open;
  }
  send(frame: string): void {
    this.inner.send(frame);
  }
  bufferedAmount(): number {
    return this.inner.bufferedAmount();
  }
  onClose(handler: (reason?: Error) => void): Unsubscribe {
    return this.inner.onClose(handler);
  }
  onDrain(handler: () => void): Unsubscribe {
    return this.inner.onDrain(handler);
  }
  close(): void {
    this.inner.close();
  }

  onFrame(handler: (frame: string) => void): Unsubscribe {
    this.handler = handler;
    for (const frame of this.early.splice(0)) {
      if (this.handler !== handler) break;
      handler(frame);
    }
    return () => {
      if (this.handler === handler) this.handler = undefined;
    };
  }

  deliver(frame: string): void {
    if (this.handler) this.handler(frame);
    else this.early.push(frame);
  }
}

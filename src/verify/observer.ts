import { P2PSyncError } from '../core/errors.js';
import type { PeerLink } from '../core/link.js';
import { P2PSYNC_CAPABILITY } from '../replication/master.js';
import { DEFAULT_LIMITS } from '../replication/limits.js';
import { Rpc } from '../replication/rpc.js';
import type { DigestSource } from './bisect.js';
import {
  checkDigestAnswer,
  DIGEST_FEATURE,
  DIGEST_METHOD,
  helloFeature,
  isObserverError,
  OBSERVER_ERROR_CODE,
  OBSERVER_FEATURE,
  type DigestQuery,
  type RangeAnswer,
} from './protocol.js';

/**
 * What a peer of the topic is, as an observer sees it:
 * - `p2psync`: a p2psync replica that serves digests (verifiable);
 * - `p2psync-old`: a p2psync replica from before digests (not verifiable);
 * - `rxdb`: a replica that announced no p2psync capability, an RxDB app (not verifiable);
 * - `observer`: another `p2psync verify` (no replica).
 */
export type PeerKind = 'p2psync' | 'p2psync-old' | 'rxdb' | 'observer';

export interface PeerInfo {
  peerId: string;
  kind: PeerKind;
  /** The peer's storage token (replicas only). */
  peerToken?: string;
}

/** How long to wait for a replica's own `token` request (its hello) after it answered ours; both come at connect. */
const HELLO_WAIT_MS = 5_000;

/**
 * The observer's side of one link (`p2psync verify`). It never replicates: it answers every `token` request with
 * the `E_OBSERVER` error, so that replicas leave it alone (RxDB ignores a peer whose token request failed; p2psync
 * stops its handshake), and any other request with an error. It asks the peer's storage token, reads the peer's
 * hello for the digest feature, and sends digest queries, whose answers it validates.
 */
export class ObserverLink implements DigestSource {
  private readonly rpc: Rpc;
  private hello: unknown[] | undefined;
  private helloWaiters: Array<() => void> = [];
  /** Frames, requests or answers refused from this peer. */
  rejected = 0;

  constructor(
    readonly link: PeerLink,
    private readonly o: { ownToken: string; timeoutMs: number },
  ) {
    this.rpc = new Rpc({
      link,
      ownToken: o.ownToken,
      timeoutMs: o.timeoutMs,
      limits: DEFAULT_LIMITS,
      handlers: {
        onRequest: (r) => {
          if (r.method === 'token') {
            this.hello ??= r.params;
            for (const w of this.helloWaiters.splice(0)) w();
          }
          const message =
            r.method === 'token'
              ? 'p2psync verify is an observer: it holds no documents and does not replicate'
              : 'p2psync verify serves no requests';
          this.rpc.respondError(r.id, { name: 'P2PSyncError', code: OBSERVER_ERROR_CODE, message });
        },
        onStream: () => void this.rejected++,
        onInvalid: () => void this.rejected++,
        onDrain: () => undefined,
        // a peer over a bound on what one link may buffer is dropped, as replication drops it
        onOverLimit: () => this.close(),
      },
    });
    this.rpc.start();
  }

  /** Learns what the peer is. Rejects when the link closes or the peer does not answer in time. */
  async classify(): Promise<PeerInfo> {
    const peerId = this.link.remotePeerId;
    let token: unknown;
    try {
      token = await this.rpc.request('token', [{ [OBSERVER_FEATURE]: 1 }]);
    } catch (err) {
      if (isObserverError(err)) return { peerId, kind: 'observer' };
      throw err;
    }
    if (typeof token !== 'string' || token.length === 0 || token.length > 1024)
      throw new P2PSyncError('E_PROTOCOL', `peer ${peerId} answered token without a storage token`);
    const hello = await this.waitHello();
    const kind: PeerKind =
      helloFeature(hello, DIGEST_FEATURE) >= 1
        ? 'p2psync'
        : helloFeature(hello, P2PSYNC_CAPABILITY) >= 1
          ? 'p2psync-old'
          : 'rxdb';
    return { peerId, kind, peerToken: token };
  }

  async digest(query: DigestQuery): Promise<RangeAnswer[]> {
    const result = await this.rpc.request(DIGEST_METHOD, [query]);
    const answers = checkDigestAnswer(result, query);
    if (typeof answers === 'string') {
      this.rejected++;
      throw new P2PSyncError('E_PROTOCOL', `peer ${this.link.remotePeerId} sent an invalid digest answer: ${answers}`, {
        peerId: this.link.remotePeerId,
      });
    }
    return answers;
  }

  close(): void {
    this.rpc.close();
    this.link.close();
  }

  /** The peer's hello (`[]` from an RxDB peer, or when none came in time). */
  private waitHello(): Promise<unknown[]> {
    if (this.hello) return Promise.resolve(this.hello);
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        resolve(this.hello ?? []);
      };
      const timer = setTimeout(done, Math.min(HELLO_WAIT_MS, this.o.timeoutMs));
      this.helloWaiters.push(done);
      this.link.onClose(done);
    });
  }
}

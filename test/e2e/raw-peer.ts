import type { PeerLink } from '../../src/core/link.js';
import { createSignalingClient, type SignalingClient } from '../../src/signaling/client.js';
import { createMesh, type Mesh } from '../../src/transport/mesh.js';
import { WebRTCRuntime } from '../../src/transport/wrtc.js';

/** One parsed message received from the real peer (chunks already joined). */
export type RawMessage = Record<string, unknown>;

/** JSON text sent exactly as given (for members like `__proto__` that JSON.stringify cannot produce). */
export class RawJson {
  constructor(readonly text: string) {}
}

/** Answers a request of the real peer (a value or RawJson); `undefined` leaves it unanswered. */
export type RawRequestHandler = (method: string, params: unknown[], message: RawMessage) => unknown;

/**
 * A test-side peer that speaks the data-channel protocol by hand over a real WebRTC link: it answers `token`
 * with its own storage token and lets the test send arbitrary frames (hostile ones included) to a `p2psync join`
 * process, and read what comes back. Always `close()` it: that releases node-datachannel so the worker can exit.
 */
export class RawPeer {
  readonly received: RawMessage[] = [];
  private waiters: Array<{ pred: (m: RawMessage) => boolean; resolve: (m: RawMessage) => void }> = [];
  private chunks = new Map<string, string[]>();
  private counter = 0;
  /** Extra request handling (beyond `token`), for playing master to a real fork. */
  onRequest: RawRequestHandler | undefined;

  private constructor(
    private readonly signaling: SignalingClient,
    private readonly mesh: Mesh,
    readonly link: PeerLink,
    readonly token: string,
  ) {
    link.onFrame((frame) => this.receive(frame));
  }

  /** Joins `topic` on `url` and resolves with the first WebRTC link that connects (to the real peer). */
  static async connect(url: string, topic: string, token: string, timeoutMs = 20_000): Promise<RawPeer> {
    const signaling = createSignalingClient({ url, topic });
    const mesh = createMesh({
      signal: signaling,
      ice: { iceServers: [], bindAddress: '127.0.0.1' },
      runtime: new WebRTCRuntime(),
    });
    try {
      const link = await new Promise<PeerLink>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('raw peer: no WebRTC link in time')), timeoutMs);
        const first = mesh.links()[0];
        if (first) {
          clearTimeout(timer);
          resolve(first);
          return;
        }
        const off = mesh.onLink((l) => {
          clearTimeout(timer);
          off();
          resolve(l);
        });
      });
      return new RawPeer(signaling, mesh, link, token);
    } catch (err) {
      await mesh.close();
      await signaling.close();
      throw err;
    }
  }

  /** Sends one raw text frame, unchanged. */
  send(frame: string): void {
    this.link.send(frame);
  }

  /** Sends `{id, method, params}` (or the raw `paramsJson` text as params) and resolves with the response. */
  request(method: string, params: unknown[] | { json: string }, timeoutMs = 15_000): Promise<RawMessage> {
    const id = `raw|${this.counter++}`;
    const paramsText = Array.isArray(params) ? JSON.stringify(params) : params.json;
    this.send(`{"id":${JSON.stringify(id)},"method":${JSON.stringify(method)},"params":${paramsText}}`);
    return this.waitFor((m) => m.id === id && m.method === undefined, timeoutMs, `a response to ${method} (${id})`);
  }

  /** Resolves with the first message (already received or future) matching `pred`. */
  waitFor(pred: (m: RawMessage) => boolean, timeoutMs = 15_000, what = 'a message'): Promise<RawMessage> {
    const seen = this.received.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`raw peer: timed out waiting for ${what}; received ${this.received.length} messages`));
      }, timeoutMs);
      const done = (m: RawMessage): void => {
        clearTimeout(timer);
        resolve(m);
      };
      this.waiters.push({ pred, resolve: done });
    });
  }

  async close(): Promise<void> {
    this.link.close();
    await this.mesh.close(); // the last mesh of the runtime to close calls node-datachannel's cleanup()
    await this.signaling.close();
  }

  private receive(frame: string): void {
    let message: unknown;
    try {
      message = JSON.parse(frame);
    } catch {
      return;
    }
    if (!message || typeof message !== 'object' || Array.isArray(message)) return;
    const m = message as RawMessage;
    const chunk = m.chunk as { id: string; index: number; total: number; data: string } | undefined;
    if (chunk) {
      const parts = this.chunks.get(chunk.id) ?? new Array<string>(chunk.total);
      parts[chunk.index] = chunk.data;
      this.chunks.set(chunk.id, parts);
      if (parts.filter((p) => p !== undefined).length === chunk.total) {
        this.chunks.delete(chunk.id);
        this.receive(parts.join(''));
      }
      return;
    }
    this.received.push(m);
    this.waiters = this.waiters.filter((w) => (w.pred(m) ? (w.resolve(m), false) : true));
    if (typeof m.method === 'string') this.answer(m);
  }

  private answer(m: RawMessage): void {
    const params = Array.isArray(m.params) ? m.params : [];
    const result = m.method === 'token' ? this.token : this.onRequest?.(m.method as string, params, m);
    if (result instanceof RawJson) this.send(`{"id":${JSON.stringify(m.id)},"result":${result.text}}`);
    else if (result !== undefined) this.send(JSON.stringify({ id: m.id, result }));
  }
}

import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import { WebSocket, type ClientOptions } from 'ws';
import { expect } from 'vitest';
import {
  startSignalServer,
  type SignalServer,
  type SignalServerEvent,
  type SignalServerOptions,
} from '../../src/signaling/server.js';

/** Generous: the machine has 2 cores shared with other test runs. */
export const EVENT_TIMEOUT_MS = 10_000;

export const TLS_CERT = readFileSync(new URL('../fixtures/tls/cert.pem', import.meta.url));
export const TLS_KEY = readFileSync(new URL('../fixtures/tls/key.pem', import.meta.url));
export const TLS_CERT_PATH = new URL('../fixtures/tls/cert.pem', import.meta.url).pathname;
export const TLS_KEY_PATH = new URL('../fixtures/tls/key.pem', import.meta.url).pathname;

export type Msg = Record<string, unknown> & { type?: unknown };
export interface CloseInfo {
  code: number;
  reason: string;
}

/** Servers and clients made by a test; `cleanup()` in afterEach ends them all. */
export class Harness {
  private readonly servers: SignalServer[] = [];
  private readonly clients: TestClient[] = [];

  async server(options: SignalServerOptions = {}): Promise<SignalServer> {
    const s = await startSignalServer({ port: 0, ...options });
    this.servers.push(s);
    return s;
  }

  async client(url: string, options?: ClientOptions): Promise<TestClient> {
    const c = new TestClient(url, options);
    this.clients.push(c);
    await c.opened;
    return c;
  }

  /** A client that has received `init` and joined `room`, with its own `joined` consumed. */
  async member(url: string, room: string): Promise<TestClient> {
    const c = await this.client(url);
    await c.init();
    c.send({ type: 'join', room });
    await c.waitFor((m) => m.type === 'joined' && Array.isArray(m.otherPeerIds) && m.otherPeerIds.includes(c.peerId));
    return c;
  }

  async cleanup(): Promise<void> {
    for (const c of this.clients.splice(0)) c.ws.terminate();
    await Promise.all(this.servers.splice(0).map((s) => s.close({ timeoutMs: 1_000 })));
  }
}

/** A raw `ws` client that records every message and the close code. */
export class TestClient {
  readonly ws: WebSocket;
  readonly received: Msg[] = [];
  readonly rawFrames: string[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<CloseInfo>;
  peerId = '';
  private cursor = 0;
  private wake: (() => void) | undefined;

  constructor(url: string, options?: ClientOptions) {
    this.ws = new WebSocket(url, options);
    this.ws.on('message', (data) => {
      const text = data.toString();
      this.rawFrames.push(text);
      let msg: Msg;
      try {
        msg = JSON.parse(text) as Msg;
      } catch {
        msg = { type: '__non_json__', text };
      }
      this.received.push(msg);
      this.wake?.();
    });
    this.ws.on('error', () => {
      /* surfaced through `closed` */
    });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected response ${res.statusCode}`)));
    });
    this.closed = new Promise((resolve) =>
      this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
  }

  send(msg: unknown): void {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  async init(): Promise<string> {
    const m = await this.waitFor((x) => x.type === 'init');
    this.peerId = String(m.yourPeerId);
    return this.peerId;
  }

  /** The next message after the last one returned that matches `pred` (earlier non-matching ones are skipped). */
  async waitFor(pred: (m: Msg) => boolean, timeoutMs = EVENT_TIMEOUT_MS): Promise<Msg> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.cursor < this.received.length) {
        const m = this.received[this.cursor++]!;
        if (pred(m)) return m;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for a message; got ${JSON.stringify(this.received)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** Waits for a `joined` whose list equals `ids` (in order). */
  joined(ids: string[]): Promise<Msg> {
    return this.waitFor((m) => m.type === 'joined' && JSON.stringify(m.otherPeerIds) === JSON.stringify(ids));
  }

  /** Resolves with the close info, or rejects after the timeout. */
  closedWithin(timeoutMs = EVENT_TIMEOUT_MS): Promise<CloseInfo> {
    return Promise.race([
      this.closed,
      new Promise<CloseInfo>((_, reject) =>
        setTimeout(() => reject(new Error('socket did not close in time')), timeoutMs).unref(),
      ),
    ]);
  }
}

/** Proof the server still works: two fresh clients join a room, see each other and exchange a signal. */
export async function assertServes(h: Harness, url: string): Promise<void> {
  const room = `proof-${Math.random().toString(36).slice(2, 10)}`;
  const a = await h.member(url, room);
  const b = await h.member(url, room);
  await a.joined([a.peerId, b.peerId]);
  const signal = {
    type: 'signal',
    senderPeerId: b.peerId,
    receiverPeerId: a.peerId,
    room,
    data: { type: 'offer', sdp: 'v=0' },
    connectionId: 'abcdefghij',
  };
  b.send(signal);
  const got = await a.waitFor((m) => m.type === 'signal');
  expect(got).toEqual(signal);
  a.ws.close();
  b.ws.close();
}

export interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A plain HTTP(S) request to the signaling server's port. */
export function httpGet(
  url: string,
  opts: { headers?: Record<string, string>; method?: string; ca?: Buffer } = {},
): Promise<HttpResult> {
  const u = new URL(url);
  const tls = u.protocol === 'https:' || u.protocol === 'wss:';
  const req = (tls ? httpsRequest : httpRequest)({
    host: u.hostname,
    port: u.port,
    path: u.pathname + u.search,
    method: opts.method ?? 'GET',
    headers: opts.headers,
    ...(tls ? { ca: opts.ca ?? TLS_CERT } : {}),
  });
  return new Promise((resolve, reject) => {
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Tries a WebSocket upgrade and resolves with the HTTP status of a refusal (or 101 when it opened). */
export function upgradeStatus(url: string, options?: ClientOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.once('open', () => {
      resolve(101);
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

/** The value of one Prometheus sample, e.g. `metric(text, 'p2psync_signal_frames_rejected_total{reason="invalid_json"}')`. */
export function metric(text: string, sample: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(sample + ' ')) return Number(line.slice(sample.length + 1));
  }
  return undefined;
}

export function httpUrl(server: SignalServer, path: string): string {
  return server.url.replace(/^ws/, 'http').replace(/\/$/, '') + path;
}

/** Collects a server's `events$` diagnostics and waits for one. */
export class EventLog {
  readonly events: SignalServerEvent[] = [];
  private waiters: Array<{ pred: (e: SignalServerEvent) => boolean; resolve: () => void }> = [];
  readonly sink = (e: SignalServerEvent): void => {
    this.events.push(e);
    this.waiters = this.waiters.filter((w) => (w.pred(e) ? (w.resolve(), false) : true));
  };

  waitFor(pred: (e: SignalServerEvent) => boolean, timeoutMs = EVENT_TIMEOUT_MS): Promise<void> {
    if (this.events.some(pred)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out waiting for a server event; got ${JSON.stringify(this.events)}`)),
        timeoutMs,
      );
      this.waiters.push({ pred, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }
}

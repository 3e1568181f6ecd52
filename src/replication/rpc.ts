import { parseJsonObject } from '../core/json.js';
import { debuglog } from 'node:util';
import type { PeerLink } from '../core/link.js';
import { P2PSyncError } from '../core/errors.js';
import { randomToken } from '../core/random.js';
import {
  Reassembler,
  encodeFrames,
  fitsOneFrame,
  frameSizes,
  type ChunkRejection,
  type FrameSizes,
} from './chunking.js';
import type { ReplicationLimits } from './limits.js';

const debug = debuglog('p2psync');

/** The reserved response id of master change-stream events (docs/PROTOCOL.md §2.2). */
export const STREAM_ID = 'masterChangeStream$';

const MAX_REQUEST_ID_LENGTH = 512;

/** An incoming request, checked for shape only: `params` is an array, `id` a string. */
export interface RpcRequest {
  id: string;
  method: string;
  params: unknown[];
  /** Size of the request's text: what it costs to keep it queued. */
  chars: number;
}

export interface RpcHandlers {
  onRequest(request: RpcRequest): void;
  onStream(result: unknown): void;
  /** A frame or chunk was refused (malformed, over a limit, unknown response id...). */
  onInvalid(reason: string): void;
  /** Outbound pressure went down (a drain); waiters were already woken. */
  onDrain(): void;
  /** The peer went over a buffering limit (a message or the reassembly budget too large): drop it. */
  onOverLimit(reason: string, limit: string): void;
}

export interface RpcOptions {
  link: PeerLink;
  ownToken: string;
  timeoutMs: number;
  limits: ReplicationLimits;
  handlers: RpcHandlers;
  /** Overrides the frame sizes derived from `link.maxMessageSize` (tests use RxDB's 16,384). */
  frameSizes?: FrameSizes;
}

interface Pending {
  method: string;
  /** `bytes`: the answer's size in UTF-8 bytes. */
  resolve(result: unknown, bytes: number): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

interface Waiter {
  limit: number;
  resolve(): void;
}

/**
 * Request/response over one peer link (docs/PROTOCOL.md §2.1-2.2): framing and chunking, reassembly within limits,
 * request ids `<ownToken>|<10 letters>|<counter>`, timeouts, responses matched by id on this link only, and one
 * ordered outbound queue with flow control: frames wait while the link buffers more than the high-water mark, and
 * producers can wait until the queue is short (`writable`). Messages go out strictly in the order they were
 * queued, so a stream event never overtakes an earlier response or the other way round.
 */
export class Rpc {
  private readonly pending = new Map<string, Pending>();
  private readonly reassembler: Reassembler;
  private readonly sizes: FrameSizes;
  private readonly requestFlag = randomToken(10);
  private counter = 0;
  private queue: string[] = [];
  private head = 0;
  private queuedChars = 0;
  private waiters: Waiter[] = [];
  private pollTimer: NodeJS.Timeout | undefined;
  private isClosed = false;
  /** Size of the last message queued, in characters. */
  lastSentBytes = 0;

  constructor(private readonly options: RpcOptions) {
    const { link, limits } = options;
    this.sizes = options.frameSizes ?? frameSizes(link.maxMessageSize);
    this.reassembler = new Reassembler(limits, (reason: ChunkRejection) => {
      if (reason === 'size')
        options.handlers.onOverLimit(
          `a chunked message over ${limits.maxMessageChars} characters in reassembly`,
          'maxMessageChars',
        );
      else options.handlers.onInvalid(`chunk: ${reason}`);
    });
  }

  /**
   * Attaches to the link. Separate from the constructor because a link hands over frames that arrived early as
   * soon as a handler is set, and the handlers may use this instance.
   */
  start(): void {
    const link = this.options.link;
    link.onClose(() => this.close());
    link.onDrain(() => this.drained());
    link.onFrame((frame) => this.receive(frame));
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Characters queued here plus bytes buffered by the link: what this peer currently costs us outbound. */
  get pressure(): number {
    return this.queuedChars + this.options.link.bufferedAmount();
  }

  /** Sends a request; resolves with its `result`, rejects on an error response, a timeout or a closed link. */
  request(method: string, params: unknown[], timeoutMs = this.options.timeoutMs): Promise<unknown> {
    return this.requestSized(method, params, timeoutMs).then((r) => r.result);
  }

  /**
   * Like `request`, and also tells the size of the answer in UTF-8 bytes. `lastSentBytes` holds the size of the
   * request right after the call returns.
   */
  requestSized(
    method: string,
    params: unknown[],
    timeoutMs = this.options.timeoutMs,
  ): Promise<{ result: unknown; bytes: number }> {
    if (this.isClosed) return Promise.reject(new P2PSyncError('E_PEER', 'the peer link is closed'));
    const id = `${this.options.ownToken}|${this.requestFlag}|${this.counter++}`;
    return new Promise<{ result: unknown; bytes: number }>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new P2PSyncError('E_TIMEOUT', `no answer to ${method} within ${timeoutMs} ms`, { method }));
      }, timeoutMs);
      this.pending.set(id, { method, resolve: (result, bytes) => resolve({ result, bytes }), reject, timer });
      this.enqueue({ id, method, params });
    });
  }

  /** Largest message in UTF-8 bytes that goes out as one frame: batches that fit travel without chunking. */
  get frameBytes(): number {
    return this.sizes.maxBytes;
  }

  respond(id: string, result: unknown): void {
    this.enqueue({ id, result });
  }

  /** An error response in RxDB's shape (`errorToPlainJson`): `{id, result: null, error: {name, message, ...}}`. */
  respondError(id: string, error: { name: string; message: string; code?: string }): void {
    this.enqueue({ id, result: null, error });
  }

  /** A master change-stream event: `"RESYNC"` or `{checkpoint, documents}`. */
  sendStream(result: unknown): void {
    this.enqueue({ id: STREAM_ID, result });
  }

  /** Resolves once `pressure` is below `limit` (or the link closed). */
  writable(limit: number): Promise<void> {
    if (this.isClosed || this.pressure < limit) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.waiters.push({ limit, resolve });
      this.schedulePoll();
    });
  }

  /** Fails every pending request and drops the queue. Idempotent; the link's close calls it too. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    const err = new P2PSyncError('E_PEER', 'the peer link is closed');
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    this.queue = [];
    this.head = 0;
    this.queuedChars = 0;
    this.reassembler.clear();
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    for (const w of this.waiters.splice(0)) w.resolve();
  }

  // ---- outbound ----

  private enqueue(message: unknown): void {
    if (this.isClosed) return;
    const text = JSON.stringify(message);
    const bytes = Buffer.byteLength(text, 'utf8');
    this.lastSentBytes = bytes;
    const link = this.options.link;
    if (
      this.head === this.queue.length &&
      fitsOneFrame(text, this.sizes, bytes) &&
      link.bufferedAmount() < this.options.limits.highWaterBytes
    ) {
      this.send(text);
      return;
    }
    for (const frame of encodeFrames(text, this.sizes)) {
      this.queue.push(frame);
      this.queuedChars += frame.length;
    }
    this.pump();
  }

  private pump(): void {
    const link = this.options.link;
    const hw = this.options.limits.highWaterBytes;
    while (this.head < this.queue.length) {
      if (this.isClosed) return;
      if (link.bufferedAmount() >= hw) {
        this.schedulePoll();
        break;
      }
      const frame = this.queue[this.head]!;
      this.queue[this.head++] = '';
      this.queuedChars -= frame.length;
      this.send(frame);
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.wake();
  }

  /** A link that cannot take a frame is broken: fail everything now rather than leave requests hanging. */
  private send(frame: string): void {
    try {
      this.options.link.send(frame);
    } catch (err) {
      debug(
        'replication: sending to %s failed: %s',
        this.options.link.remotePeerId,
        err instanceof Error ? err.message : String(err),
      );
      this.close();
      this.options.link.close();
    }
  }

  private wake(): void {
    if (this.waiters.length === 0) return;
    const pressure = this.pressure;
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      if (pressure < w.limit) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
    if (still.length > 0) this.schedulePoll();
  }

  /** Links differ in when they report a drain, so a slow timer re-checks while anything waits on the buffer. */
  private schedulePoll(): void {
    if (this.pollTimer || this.isClosed) return;
    this.pollTimer = setTimeout(() => {
      this.pollTimer = undefined;
      this.pump();
    }, this.options.limits.drainPollMs);
  }

  private drained(): void {
    if (this.isClosed) return;
    this.pump();
    this.options.handlers.onDrain();
  }

  // ---- inbound ----

  private receive(frame: unknown): void {
    if (this.isClosed) return;
    const text = typeof frame === 'string' ? frame : String(frame);
    let msg = parseObject(text);
    if (msg === undefined) return this.options.handlers.onInvalid('frame is not a JSON object');
    let message = text;
    if (msg.chunk) {
      const whole = this.reassembler.add(msg.chunk);
      if (whole === undefined) return;
      message = whole;
      msg = parseObject(whole);
      if (msg === undefined) return this.options.handlers.onInvalid('reassembled message is not a JSON object');
    }
    const { id, method } = msg;
    if (typeof method === 'string') {
      if (typeof id !== 'string' || id.length === 0 || id.length > MAX_REQUEST_ID_LENGTH) {
        return this.options.handlers.onInvalid('request without a valid id');
      }
      const params = Array.isArray(msg.params) ? (msg.params as unknown[]) : msg.params === undefined ? [] : undefined;
      if (params === undefined) {
        this.respondError(id, { name: 'TypeError', message: 'params must be an array' });
        return this.options.handlers.onInvalid('request params are not an array');
      }
      this.options.handlers.onRequest({ id, method, params, chars: message.length });
      return;
    }
    if (id === STREAM_ID) {
      this.options.handlers.onStream(msg.result);
      return;
    }
    const pending = typeof id === 'string' ? this.pending.get(id) : undefined;
    if (!pending) return this.options.handlers.onInvalid('response to an unknown request id');
    this.pending.delete(id as string);
    clearTimeout(pending.timer);
    if (msg.error !== undefined && msg.error !== null && msg.error !== false) {
      pending.reject(remoteError(pending.method, msg.error));
    } else {
      pending.resolve(msg.result, Buffer.byteLength(message, 'utf8'));
    }
  }
}

function parseObject(text: string): Record<string, unknown> | undefined {
  const o = parseJsonObject(text);
  if (o === undefined) debug('replication: dropped a frame that is not a JSON object (%d chars)', text.length);
  return o;
}

function remoteError(method: string, error: unknown): P2PSyncError {
  const e = typeof error === 'object' && error !== null ? (error as Record<string, unknown>) : {};
  const name = typeof e.name === 'string' ? e.name.slice(0, 200) : 'Error';
  const message = typeof e.message === 'string' ? e.message.slice(0, 1000) : '';
  const code = typeof e.code === 'string' ? e.code.slice(0, 100) : undefined;
  return new P2PSyncError('E_PEER', `the peer answered ${method} with ${name}${message ? `: ${message}` : ''}`, {
    method,
    remote: { name, message, ...(code ? { code } : {}) },
  });
}

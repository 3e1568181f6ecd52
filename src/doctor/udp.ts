import { createSocket, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { decode, type StunMessage } from './stun.js';

/** RFC 5389 §7.2.1 retransmits at RTO, 2·RTO, ...; a shorter RTO suits a diagnosis that should end in seconds. */
const FIRST_RTO_MS = 250;
export const DEFAULT_STUN_TIMEOUT_MS = 3_000;

interface Pending {
  resolve(m: StunMessage): void;
}

/** One UDP socket for STUN transactions: the same local port towards every server (NAT mapping checks need it). */
export class StunSocket {
  private readonly pending = new Map<string, Pending>();
  private closed = false;

  private constructor(
    private readonly socket: Socket,
    private readonly family: 4 | 6,
  ) {
    socket.on('message', (buf) => {
      const message = decode(buf);
      if (!message) return;
      const waiter = this.pending.get(message.transactionId.toString('hex'));
      if (waiter) waiter.resolve(message);
    });
  }

  static async open(family: 4 | 6 = 4, bindAddress?: string): Promise<StunSocket> {
    const socket = createSocket(family === 6 ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, bindAddress, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('error', () => undefined); // ICMP errors surface as timeouts
    return new StunSocket(socket, family);
  }

  get localPort(): number {
    return this.socket.address().port;
  }

  /** Sends a request with retransmits; resolves with the response, or rejects with "no response" after `timeoutMs`. */
  async request(
    host: string,
    port: number,
    message: Buffer,
    transactionId: Buffer,
    timeoutMs = DEFAULT_STUN_TIMEOUT_MS,
  ): Promise<StunMessage> {
    const address = isIP(host) ? host : (await lookup(host, { family: this.family })).address;
    const key = transactionId.toString('hex');
    return new Promise<StunMessage>((resolve, reject) => {
      const timers: NodeJS.Timeout[] = [];
      const done = (): void => {
        for (const t of timers) clearTimeout(t);
        this.pending.delete(key);
      };
      this.pending.set(key, { resolve: (m) => (done(), resolve(m)) });
      const send = (): void => {
        if (!this.closed) this.socket.send(message, port, address);
      };
      for (let at = 0, rto = FIRST_RTO_MS; at < timeoutMs; at += rto, rto *= 2) timers.push(setTimeout(send, at));
      timers.push(
        setTimeout(() => {
          done();
          reject(new Error(`no response from ${host}:${port} within ${timeoutMs / 1000} s`));
        }, timeoutMs),
      );
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.close();
  }
}

import { parseJsonObject } from '../core/json.js';
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/*
 * The trust handshake (docs/PROTOCOL.md, "Trust handshake"): a pure state machine, no sockets. Each side sends
 * `hello` with a fresh 32-byte nonce; on the other's hello it sends `proof` = HMAC(authKey, role || transcript);
 * on the other's proof it checks it in constant time. The transcript binds the room, both roles, both DTLS
 * certificate fingerprints (as each side sees them) and both nonces, so a relay that terminated DTLS on both sides
 * with its own certificates, a proof from an earlier handshake, or a side's own proof reflected back all fail.
 */

/** Marks handshake frames; RxDB frames never carry it (and an RxDB app cannot reach a secret topic anyway). */
export const TRUST_FRAME_TAG = 'p2psync-trust';
export const TRUST_VERSION = 1;
const NONCE_BYTES = 32;
const MAC_BYTES = 32;
/** A handshake frame is about 100 characters; anything longer is not one. */
const MAX_HANDSHAKE_FRAME_CHARS = 1024;

export type Role = 'initiator' | 'responder';

export interface HandshakeParams {
  /** HMAC key derived from the topic secret. */
  authKey: Uint8Array;
  /** The (hashed) room both peers met in. */
  room: string;
  /** Whether this side made the WebRTC offer. */
  role: Role;
  /** Device id (SHA-256 fingerprint) of our own DTLS certificate, as in our SDP. */
  localFingerprint: string;
  /** Device id of the certificate the remote presented in DTLS. */
  remoteFingerprint: string;
  /** For tests only: a fixed nonce. Default: 32 fresh random bytes. */
  nonce?: Uint8Array;
}

/** What the caller does after feeding a frame: send these frames, then possibly stop. */
export type HandshakeStep =
  { status: 'continue'; send: string[] } | { status: 'done'; send: string[] } | { status: 'failed'; reason: string };

type State = 'awaiting-hello' | 'awaiting-proof' | 'done' | 'failed';

export class TrustHandshake {
  private state: State = 'awaiting-hello';
  private readonly nonce: Buffer;
  private expectedProof: Buffer | undefined;
  private started = false;

  constructor(private readonly p: HandshakeParams) {
    this.nonce = Buffer.from(p.nonce ?? randomBytes(NONCE_BYTES));
  }

  get status(): State {
    return this.state;
  }

  /** The first frame to send (our hello). Call once. */
  start(): string {
    if (this.started) throw new Error('handshake already started');
    this.started = true;
    return frame({ hello: this.nonce.toString('base64url') });
  }

  /** Feeds one frame received from the remote. */
  receive(text: string): HandshakeStep {
    if (this.state === 'done' || this.state === 'failed') return this.fail(`unexpected frame in state ${this.state}`);
    const message = parseFrame(text);
    if (!message) return this.fail('not a trust handshake frame');
    if (this.state === 'awaiting-hello') {
      if (message.hello === undefined) return this.fail('expected hello');
      const remoteNonce = decodeExact(message.hello, NONCE_BYTES);
      if (!remoteNonce) return this.fail('malformed hello');
      if (remoteNonce.equals(this.nonce)) return this.fail('hello echoes our own nonce');
      const transcript = this.transcript(remoteNonce);
      const remoteRole: Role = this.p.role === 'initiator' ? 'responder' : 'initiator';
      this.expectedProof = proofOf(this.p.authKey, remoteRole, transcript);
      this.state = 'awaiting-proof';
      return {
        status: 'continue',
        send: [frame({ proof: proofOf(this.p.authKey, this.p.role, transcript).toString('base64url') })],
      };
    }
    if (message.proof === undefined) return this.fail('expected proof');
    const proof = decodeExact(message.proof, MAC_BYTES);
    if (!proof || !timingSafeEqual(proof, this.expectedProof!))
      return this.fail('proof does not verify (wrong secret, or a relay in the middle)');
    this.state = 'done';
    return { status: 'done', send: [] };
  }

  private fail(reason: string): HandshakeStep {
    this.state = 'failed';
    return { status: 'failed', reason };
  }

  /** SHA-256 over length-prefixed fields, initiator's first: the same bytes on both sides of an honest pair. */
  private transcript(remoteNonce: Buffer): Buffer {
    const initiator = this.p.role === 'initiator';
    const fields = [
      `${TRUST_FRAME_TAG} v${TRUST_VERSION}`,
      this.p.room,
      'initiator',
      initiator ? this.p.localFingerprint : this.p.remoteFingerprint,
      'responder',
      initiator ? this.p.remoteFingerprint : this.p.localFingerprint,
    ].map((s): Buffer => Buffer.from(s, 'utf8'));
    fields.push(initiator ? this.nonce : remoteNonce, initiator ? remoteNonce : this.nonce);
    const hash = createHash('sha256');
    for (const f of fields) {
      const len = Buffer.alloc(4);
      len.writeUInt32BE(f.length);
      hash.update(len).update(f);
    }
    return hash.digest();
  }
}

function proofOf(key: Uint8Array, role: Role, transcript: Buffer): Buffer {
  return createHmac('sha256', key).update(`proof ${role}\0`, 'utf8').update(transcript).digest();
}

function frame(body: { hello?: string; proof?: string }): string {
  return JSON.stringify({ [TRUST_FRAME_TAG]: TRUST_VERSION, ...body });
}

/** The hello/proof of a handshake frame, or undefined for anything else (never throws). */
function parseFrame(text: string): { hello?: unknown; proof?: unknown } | undefined {
  if (typeof text !== 'string' || text.length > MAX_HANDSHAKE_FRAME_CHARS) return undefined;
  const o = parseJsonObject(text);
  if (o === undefined) return undefined;
  if (o[TRUST_FRAME_TAG] !== TRUST_VERSION) return undefined;
  return { hello: o['hello'], proof: o['proof'] };
}

function decodeExact(value: unknown, bytes: number): Buffer | undefined {
  if (typeof value !== 'string' || !/^[A-Za-z0-9_-]+$/.test(value)) return undefined;
  const out = Buffer.from(value, 'base64url');
  return out.length === bytes ? out : undefined;
}

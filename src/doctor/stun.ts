/**
 * STUN/TURN message framing (RFC 5389, RFC 5766): just what `doctor` and the TURN probe need: Binding, Allocate
 * and Refresh requests, their responses, and long-term-credential MESSAGE-INTEGRITY (MD5 key, HMAC-SHA1 from
 * node:crypto). Hand-written because it is about 150 lines of framing; no cryptography is implemented here.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';

export const MAGIC_COOKIE = 0x2112a442;
const HEADER_BYTES = 20;

export const Method = { binding: 0x001, allocate: 0x003, refresh: 0x004 } as const;
export const Class = { request: 0x000, success: 0x100, error: 0x110 } as const;

export const Attr = {
  mappedAddress: 0x0001,
  username: 0x0006,
  messageIntegrity: 0x0008,
  errorCode: 0x0009,
  lifetime: 0x000d,
  realm: 0x0014,
  nonce: 0x0015,
  xorRelayedAddress: 0x0016,
  requestedTransport: 0x0019,
  xorMappedAddress: 0x0020,
  software: 0x8022,
} as const;

export interface StunAttribute {
  type: number;
  value: Buffer;
}

export interface StunMessage {
  method: number;
  cls: number;
  transactionId: Buffer;
  attributes: StunAttribute[];
}

export interface TransportAddress {
  address: string;
  port: number;
}

/** Long-term credentials (RFC 5389 §10.2): the key is MD5(username ":" realm ":" password). */
export interface LongTermKey {
  username: string;
  realm: string;
  nonce: string;
  key: Buffer;
}

export function longTermKey(username: string, realm: string, password: string, nonce: string): LongTermKey {
  return { username, realm, nonce, key: createHash('md5').update(`${username}:${realm}:${password}`).digest() };
}

export function newTransactionId(): Buffer {
  return randomBytes(12);
}

function header(type: number, length: number, transactionId: Buffer): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  h.writeUInt16BE(type, 0);
  h.writeUInt16BE(length, 2);
  h.writeUInt32BE(MAGIC_COOKIE, 4);
  transactionId.copy(h, 8);
  return h;
}

function attribute(type: number, value: Buffer): Buffer {
  const padded = Buffer.alloc(4 + Math.ceil(value.length / 4) * 4);
  padded.writeUInt16BE(type, 0);
  padded.writeUInt16BE(value.length, 2);
  value.copy(padded, 4);
  return padded;
}

/** Encodes a request; with `credentials`, USERNAME, REALM, NONCE and MESSAGE-INTEGRITY are appended. */
export function encodeRequest(
  method: number,
  transactionId: Buffer,
  attributes: StunAttribute[],
  credentials?: LongTermKey,
): Buffer {
  const type = method | Class.request;
  const parts = attributes.map((a) => attribute(a.type, a.value));
  if (credentials) {
    parts.push(attribute(Attr.username, Buffer.from(credentials.username, 'utf8')));
    parts.push(attribute(Attr.realm, Buffer.from(credentials.realm, 'utf8')));
    parts.push(attribute(Attr.nonce, Buffer.from(credentials.nonce, 'utf8')));
  }
  let body = Buffer.concat(parts);
  if (credentials) {
    // the HMAC covers the header with a length that already counts the 24-byte MESSAGE-INTEGRITY attribute
    const covered = Buffer.concat([header(type, body.length + 24, transactionId), body]);
    const mac = createHmac('sha1', credentials.key).update(covered).digest();
    body = Buffer.concat([body, attribute(Attr.messageIntegrity, mac)]);
  }
  return Buffer.concat([header(type, body.length, transactionId), body]);
}

/** Decodes a STUN message; undefined for anything that is not one (never throws). */
export function decode(buf: Buffer): StunMessage | undefined {
  if (buf.length < HEADER_BYTES || (buf[0]! & 0xc0) !== 0 || buf.readUInt32BE(4) !== MAGIC_COOKIE) return undefined;
  const type = buf.readUInt16BE(0);
  const length = buf.readUInt16BE(2);
  if (length % 4 !== 0 || HEADER_BYTES + length > buf.length) return undefined;
  const attributes: StunAttribute[] = [];
  let offset = HEADER_BYTES;
  while (offset + 4 <= HEADER_BYTES + length) {
    const attrType = buf.readUInt16BE(offset);
    const attrLength = buf.readUInt16BE(offset + 2);
    if (offset + 4 + attrLength > HEADER_BYTES + length) return undefined;
    attributes.push({ type: attrType, value: buf.subarray(offset + 4, offset + 4 + attrLength) });
    offset += 4 + Math.ceil(attrLength / 4) * 4;
  }
  // the method's 12 bits are spread around the two class bits (RFC 5389 §6)
  const method = (type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2);
  const cls = type & 0x0110;
  return { method, cls, transactionId: buf.subarray(8, 20), attributes };
}

export function find(message: StunMessage, type: number): Buffer | undefined {
  return message.attributes.find((a) => a.type === type)?.value;
}

/** An (XOR-)MAPPED-ADDRESS style value; undefined if malformed. */
export function decodeAddress(
  value: Buffer | undefined,
  transactionId: Buffer,
  xor: boolean,
): TransportAddress | undefined {
  if (!value || value.length < 8) return undefined;
  const family = value[1];
  const port = value.readUInt16BE(2) ^ (xor ? MAGIC_COOKIE >>> 16 : 0);
  if (family === 0x01) {
    const raw = value.readUInt32BE(4) ^ (xor ? MAGIC_COOKIE : 0);
    return { address: [raw >>> 24, (raw >>> 16) & 255, (raw >>> 8) & 255, raw & 255].join('.'), port };
  }
  if (family === 0x02 && value.length >= 20) {
    const mask = Buffer.concat([header(0, 0, transactionId).subarray(4, 20)]);
    const bytes = Buffer.from(value.subarray(4, 20));
    if (xor) for (let i = 0; i < 16; i++) bytes[i]! ^= mask[i]!;
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
    return { address: groups.join(':'), port };
  }
  return undefined;
}

/** The mapped address of a response: XOR-MAPPED-ADDRESS, else the legacy MAPPED-ADDRESS. */
export function mappedAddress(message: StunMessage): TransportAddress | undefined {
  return (
    decodeAddress(find(message, Attr.xorMappedAddress), message.transactionId, true) ??
    decodeAddress(find(message, Attr.mappedAddress), message.transactionId, false)
  );
}

/** ERROR-CODE as `{ code, reason }` (RFC 5389 §15.6). */
export function errorCode(message: StunMessage): { code: number; reason: string } | undefined {
  const value = find(message, Attr.errorCode);
  if (!value || value.length < 4) return undefined;
  return { code: (value[2]! & 0x07) * 100 + value[3]!, reason: value.subarray(4).toString('utf8') };
}

export function text(message: StunMessage, type: number): string | undefined {
  return find(message, type)?.toString('utf8');
}

export function uint32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value >>> 0, 0);
  return b;
}

import { describe, expect, it } from 'vitest';
import {
  Attr,
  Class,
  decode,
  encodeRequest,
  errorCode,
  longTermKey,
  mappedAddress,
  Method,
  uint32,
} from '../../src/doctor/stun.js';

describe('STUN framing', () => {
  it('decodes the RFC 5769 §2.2 XOR-MAPPED-ADDRESS (192.0.2.1:32853)', () => {
    const tid = Buffer.from('b7e7a701bc34d686fa87dfae', 'hex');
    const header = Buffer.from('0101000c2112a442', 'hex');
    const attr = Buffer.from('0020000800 01a147e112a643'.replace(/ /g, ''), 'hex');
    const message = decode(Buffer.concat([header, tid, attr]));
    expect(message).toMatchObject({ method: Method.binding, cls: Class.success });
    expect(mappedAddress(message!)).toEqual({ address: '192.0.2.1', port: 32853 });
  });

  it('round-trips a request, and signs it with long-term credentials', () => {
    const tid = Buffer.alloc(12, 7);
    const plain = encodeRequest(Method.allocate, tid, [{ type: Attr.requestedTransport, value: uint32(17 << 24) }]);
    expect(plain.readUInt16BE(0)).toBe(0x0003);
    const signed = encodeRequest(Method.allocate, tid, [], longTermKey('u', 'realm', 'p', 'n0nce'));
    const decoded = decode(signed)!;
    expect(decoded.method).toBe(Method.allocate);
    expect(decoded.attributes.map((a) => a.type)).toEqual([
      Attr.username,
      Attr.realm,
      Attr.nonce,
      Attr.messageIntegrity,
    ]);
    expect(decoded.attributes[3]!.value).toHaveLength(20);
    expect(signed.readUInt16BE(2)).toBe(signed.length - 20);
  });

  it('reads ERROR-CODE and refuses what is not STUN', () => {
    const tid = Buffer.alloc(12, 1);
    const value = Buffer.concat([Buffer.from([0, 0, 4, 1]), Buffer.from('Unauthorized')]);
    const attr = Buffer.concat([Buffer.from([0x00, 0x09, 0x00, value.length]), value]);
    const msg = decode(
      Buffer.concat([
        Buffer.from('0113', 'hex'),
        Buffer.from([0, attr.length]),
        Buffer.from('2112a442', 'hex'),
        tid,
        attr,
      ]),
    );
    expect(msg?.cls).toBe(Class.error);
    expect(errorCode(msg!)).toEqual({ code: 401, reason: 'Unauthorized' });
    expect(decode(Buffer.from('hello world, not stun at all'))).toBeUndefined();
    expect(decode(Buffer.alloc(10))).toBeUndefined();
  });
});

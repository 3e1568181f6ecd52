import { describe, expect, it } from 'vitest';
import { TrustHandshake, type HandshakeParams, type HandshakeStep } from '../../src/trust/handshake.js';

const KEY = Buffer.alloc(32, 1);
const FP_A = 'AA:' + '11:'.repeat(30) + '11';
const FP_B = 'BB:' + '22:'.repeat(30) + '22';
const FP_M = 'CC:' + '33:'.repeat(30) + '33';

function pair(a: Partial<HandshakeParams> = {}, b: Partial<HandshakeParams> = {}): [TrustHandshake, TrustHandshake] {
  const base = { authKey: KEY, room: 'p2ps-room' };
  return [
    new TrustHandshake({ ...base, role: 'initiator', localFingerprint: FP_A, remoteFingerprint: FP_B, ...a }),
    new TrustHandshake({ ...base, role: 'responder', localFingerprint: FP_B, remoteFingerprint: FP_A, ...b }),
  ];
}

type Tamper = (frame: string, from: 'a' | 'b') => string;

/** Runs both sides to the end over an in-order wire that `tamper` may rewrite; returns each side's last step. */
function run(
  a: TrustHandshake,
  b: TrustHandshake,
  tamper: Tamper = (f) => f,
): { a: HandshakeStep; b: HandshakeStep; wire: Array<[string, string]> } {
  const wire: Array<[string, string]> = [];
  const queue: Array<['a' | 'b', string]> = [
    ['a', a.start()],
    ['b', b.start()],
  ];
  const last: Record<'a' | 'b', HandshakeStep> = {
    a: { status: 'continue', send: [] },
    b: { status: 'continue', send: [] },
  };
  while (queue.length > 0) {
    const [from, raw] = queue.shift()!;
    const frame = tamper(raw, from);
    wire.push([from, frame]);
    const to = from === 'a' ? 'b' : 'a';
    if (last[to].status === 'failed') continue;
    const step = (to === 'a' ? a : b).receive(frame);
    last[to] = step;
    if (step.status !== 'failed') for (const s of step.send) queue.push([to, s]);
  }
  return { ...last, wire };
}

const edit = (frame: string, field: 'hello' | 'proof', fn: (bytes: Buffer) => Buffer): string => {
  const o = JSON.parse(frame) as Record<string, string>;
  if (o[field] === undefined) return frame;
  return JSON.stringify({ ...o, [field]: fn(Buffer.from(o[field], 'base64url')).toString('base64url') });
};
const flip = (b: Buffer): Buffer => {
  const c = Buffer.from(b);
  c[0] = c[0]! ^ 0x80;
  return c;
};

describe('trust handshake', () => {
  it('completes on both sides with the same key and consistent fingerprints, in one round trip', () => {
    const [a, b] = pair();
    const r = run(a, b);
    expect(r.a.status).toBe('done');
    expect(r.b.status).toBe('done');
    expect(r.wire).toHaveLength(4); // hello + proof each way
  });

  it('fails on both sides with a wrong key', () => {
    const [a, b] = pair({}, { authKey: Buffer.alloc(32, 2) });
    const r = run(a, b);
    expect(r.a).toMatchObject({ status: 'failed', reason: expect.stringMatching(/proof does not verify/) });
    expect(r.b).toMatchObject({ status: 'failed', reason: expect.stringMatching(/proof does not verify/) });
  });

  it('fails when a relay swapped the certificates (each side sees the relay fingerprint as remote)', () => {
    // a relay terminating DTLS on both sides: A sees M as remote, B sees M as remote
    const [a, b] = pair({ remoteFingerprint: FP_M }, { remoteFingerprint: FP_M });
    const r = run(a, b);
    expect(r.a.status).toBe('failed');
    expect(r.b.status).toBe('failed');
  });

  it('fails when only one side sees a swapped fingerprint, or local and remote are swapped', () => {
    expect(run(...pair({ remoteFingerprint: FP_M })).a.status).toBe('failed');
    expect(run(...pair({}, { localFingerprint: FP_A, remoteFingerprint: FP_B })).b.status).toBe('failed');
  });

  it('fails for a tampered transcript: a changed nonce in either hello', () => {
    for (const side of ['a', 'b'] as const) {
      const r = run(...pair(), (f, from) => (from === side ? edit(f, 'hello', flip) : f));
      expect(r.a.status === 'failed' || r.b.status === 'failed').toBe(true);
      expect(r.a.status).toBe('failed');
      expect(r.b.status).toBe('failed');
    }
  });

  it('fails for a tampered proof', () => {
    const r = run(...pair(), (f, from) => (from === 'b' ? edit(f, 'proof', flip) : f));
    expect(r.a).toMatchObject({ status: 'failed', reason: expect.stringMatching(/proof does not verify/) });
  });

  it('fails for a replayed response: a proof recorded in an earlier handshake', () => {
    const first = run(...pair());
    const recorded = first.wire.find(([from, f]) => from === 'b' && f.includes('proof'))![1];
    const r = run(...pair(), (f, from) => (from === 'b' && f.includes('proof') ? recorded : f));
    expect(r.a).toMatchObject({ status: 'failed', reason: expect.stringMatching(/proof does not verify/) });
  });

  it('fails when our own hello and proof are reflected back (roles are in the MAC)', () => {
    const [a] = pair();
    const hello = a.start();
    expect(a.receive(hello)).toMatchObject({ status: 'failed', reason: expect.stringMatching(/own nonce/) });

    // our own proof bounced back in place of the remote's: the role in the MAC tells them apart
    const [a2, b2] = pair();
    a2.start();
    const step = a2.receive(b2.start());
    expect(step.status).toBe('continue');
    expect(a2.receive((step as { send: string[] }).send[0]!)).toMatchObject({
      status: 'failed',
      reason: expect.stringMatching(/proof does not verify/),
    });
  });

  it('rejects anything that is not the expected handshake frame, without throwing', () => {
    const bad = [
      '{"id":"x","method":"token","params":[]}', // an RxDB request
      'not json',
      'null',
      '[]',
      '{"p2psync-trust":2,"hello":"AAAA"}',
      '{"p2psync-trust":1}',
      '{"p2psync-trust":1,"hello":"short"}',
      `{"p2psync-trust":1,"proof":"${Buffer.alloc(32).toString('base64url')}"}`, // proof before hello
      'x'.repeat(5000),
    ];
    for (const frame of bad) {
      const [a] = pair();
      a.start();
      expect(a.receive(frame).status).toBe('failed');
    }
  });

  it('rejects a second hello in place of the proof and any frame after the end', () => {
    const [a, b] = pair();
    const helloB = b.start();
    a.start();
    expect(a.receive(helloB).status).toBe('continue');
    expect(a.receive(helloB).status).toBe('failed');
    const [c, d] = pair();
    run(c, d);
    expect(c.receive('{}').status).toBe('failed');
  });

  it('uses a fresh nonce in every handshake', () => {
    const hellos = new Set(Array.from({ length: 20 }, () => pair()[0].start()));
    expect(hellos.size).toBe(20);
  });
});

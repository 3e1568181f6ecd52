import { afterEach, describe, expect, it } from 'vitest';
import { MAX_FRAME_BYTES } from '../../src/core/link.js';
import { MAX_MESSAGE_SIZE_UNADVERTISED, maxMessageSizeFromSdp } from '../../src/transport/peer-internals.js';
import { collect, runLinkContract } from './contract.js';
import { memoryPair, webrtcPair } from './helpers.js';

runLinkContract('memory pair', memoryPair);
runLinkContract('WebRTC pair (simple-peer over node-datachannel)', webrtcPair);

describe('WebRTCLink specifics', () => {
  let pair: Awaited<ReturnType<typeof webrtcPair>> | undefined;
  afterEach(async () => {
    await pair?.dispose();
    pair = undefined;
  });

  it('reads the negotiated max message size (262,144 between node-datachannel peers)', async () => {
    pair = await webrtcPair();
    expect(pair.a.maxMessageSize).toBe(262_144);
    expect(pair.b.maxMessageSize).toBe(262_144);
  });

  it('a send error (a frame over the message limit) closes the link with that error, on both sides', async () => {
    pair = await webrtcPair();
    const { a, b } = pair;
    const reason = new Promise<Error | undefined>((resolve) => a.onClose(resolve));
    const remoteClosed = new Promise<void>((resolve) => b.onClose(() => resolve()));
    expect(() => a.send('x'.repeat(MAX_FRAME_BYTES + 1))).not.toThrow();
    const err = await reason;
    expect(err).toBeInstanceOf(Error);
    expect(err?.message).toMatch(/size|limit/i);
    expect(a.open).toBe(false);
    await remoteClosed;
  });

  it('decodes binary frames (as RxDB peers send them) as UTF-8 text', async () => {
    pair = await webrtcPair();
    const frames = collect(pair.b, 2);
    const [pa] = pair.peers;
    pa.send(Buffer.from('{"id":"é"}', 'utf8'));
    pair.a.send('text');
    expect(await frames).toEqual(['{"id":"é"}', 'text']);
  });

  it('onDrain fires once the backlog is at or below the 64 KiB low-water mark', async () => {
    pair = await webrtcPair();
    const { a, b } = pair;
    const frames = collect(b, 20);
    const levels: number[] = [];
    const drained = new Promise<void>((resolve) =>
      a.onDrain(() => {
        levels.push(a.bufferedAmount());
        resolve();
      }),
    );
    for (let i = 0; i < 20; i++) a.send('y'.repeat(250_000));
    expect(a.bufferedAmount()).toBeGreaterThan(64 * 1024);
    await drained;
    expect(levels[0]).toBeLessThanOrEqual(64 * 1024);
    await frames;
  });

  it('a link whose remote is destroyed abruptly reports close', async () => {
    pair = await webrtcPair();
    const closed = new Promise<void>((resolve) => pair!.a.onClose(() => resolve()));
    pair.peers[1].destroy();
    await closed;
    expect(pair.a.open).toBe(false);
  });
});

describe('maxMessageSizeFromSdp', () => {
  it('uses the advertised size, capped at what node-datachannel can send', () => {
    expect(maxMessageSizeFromSdp('v=0\r\na=max-message-size:100000\r\n')).toBe(100_000);
    expect(maxMessageSizeFromSdp('v=0\r\na=max-message-size:1073741823\r\n')).toBe(MAX_FRAME_BYTES);
  });
  it('treats 0 as "no limit" and an SDP without the attribute as 64 KiB (RFC 8841)', () => {
    expect(maxMessageSizeFromSdp('v=0\r\na=max-message-size:0\r\n')).toBe(MAX_FRAME_BYTES);
    expect(maxMessageSizeFromSdp('v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n')).toBe(
      MAX_MESSAGE_SIZE_UNADVERTISED,
    );
  });
  it('falls back to 262,144 when there is no SDP to read', () => {
    expect(maxMessageSizeFromSdp(undefined)).toBe(262_144);
    expect(maxMessageSizeFromSdp('')).toBe(262_144);
  });
});

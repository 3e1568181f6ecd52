import * as ws from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { textFrame, textFrameOf } from '../../src/signaling/server-frame.js';
import { Harness } from './server-helpers.js';

/** ws's own frame parser (exported by ws, not typed by @types/ws): the client side, which expects unmasked frames. */
interface FrameParser {
  on(event: 'message', fn: (data: Buffer, isBinary: boolean) => void): void;
  on(event: 'error', fn: (err: Error) => void): void;
  write(chunk: Buffer): void;
}
const { Receiver } = ws as unknown as { Receiver: new (options: { isServer: boolean }) => FrameParser };

/** What a WebSocket client reads from `bytes`: each message's text, or the parse error. */
function parse(bytes: Buffer): { texts: string[]; error?: Error } {
  const out: { texts: string[]; error?: Error } = { texts: [] };
  const parser = new Receiver({ isServer: false });
  parser.on('message', (data, isBinary) => {
    expect(isBinary).toBe(false);
    out.texts.push(data.toString('utf8'));
  });
  parser.on('error', (err) => (out.error = err));
  parser.write(bytes);
  return out;
}

const h = new Harness();
afterEach(() => h.cleanup());

describe('server-to-client text frames', () => {
  // Each length form of RFC 6455 §5.2 at its edges: 7-bit (0-125), 16-bit (126-65535), 64-bit (65536+).
  const lengths = [0, 1, 125, 126, 127, 65_535, 65_536, 200_000];

  it.each(lengths)('frames %i bytes of text so that ws reads them back unchanged', (n) => {
    const text = 'x'.repeat(n);
    const frame = textFrame(text);
    expect(frame[0]).toBe(0x81);
    expect(frame[1]! & 0x80).toBe(0); // a server never masks
    expect(parse(frame)).toEqual({ texts: [text] });
    expect(textFrameOf(Buffer.from(text))).toEqual(frame);
  });

  it('counts the payload length in UTF-8 bytes, not UTF-16 code units', () => {
    // 125 code units, 250 bytes: a frame sized by string length would claim the 7-bit form and cut the text.
    const text = 'ü'.repeat(125);
    expect(parse(textFrame(text))).toEqual({ texts: [text] });
    expect(parse(textFrameOf(Buffer.from(text)))).toEqual({ texts: [text] });
  });

  it('keeps frames whole back to back, as one connection carries them', () => {
    const texts = ['{"type":"init"}', 'é'.repeat(70), 'y'.repeat(70_000), ''];
    expect(parse(Buffer.concat(texts.map((t) => textFrame(t))))).toEqual({ texts });
  });

  it('relays signals of every length form through a real server byte for byte', async () => {
    const s = await h.server({ limits: { maxFrameBytes: 256 * 1024 } });
    const a = await h.member(s.url, 'frame-room');
    const b = await h.member(s.url, 'frame-room');
    // 2-byte characters: 7-bit, 16-bit, 16-bit near its end, 64-bit length forms.
    for (const pad of [10, 500, 30_000, 100_000]) {
      const text = JSON.stringify({
        type: 'signal',
        senderPeerId: a.peerId,
        receiverPeerId: b.peerId,
        room: 'frame-room',
        data: { sdp: 'ä'.repeat(pad) },
      });
      const seen = b.rawFrames.length;
      a.send(text);
      await b.waitFor((m) => m.type === 'signal' && b.rawFrames.length > seen);
      expect(b.rawFrames.at(-1)).toBe(text);
    }
  });
});

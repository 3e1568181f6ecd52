/**
 * Server-to-client WebSocket text frames, encoded once and written as-is (RFC 6455 §5.2: FIN, opcode 1, no mask,
 * since a server never masks). A `joined` list goes to every member of a room unchanged, so its frame is built
 * once per broadcast and the same bytes are written to each member's socket: one `write` of one buffer per member,
 * where `ws`'s `send` would build a header, two option objects and a two-buffer `writev` for every member.
 *
 * Only complete frames are written, from the same thread that `ws` writes its own control frames (pong, close,
 * ping) from, so frames never interleave. Permessage-deflate is off on this server, so `ws` never holds frames
 * back in a queue that a direct write could overtake.
 */

/** Bytes of header before a payload of `length` bytes. */
function headerBytes(length: number): number {
  return length < 126 ? 2 : length < 65_536 ? 4 : 10;
}

function writeHeader(frame: Buffer, length: number): void {
  frame[0] = 0x81; // FIN + text
  if (length < 126) {
    frame[1] = length;
  } else if (length < 65_536) {
    // Byte stores rather than writeUInt16BE: one less function on the path of every relayed frame.
    frame[1] = 126;
    frame[2] = length >>> 8;
    frame[3] = length & 0xff;
  } else {
    frame[1] = 127;
    // Payloads here are bounded by maxFrameBytes (at most 100 MiB), far below 2^32.
    frame.writeUInt32BE(0, 2);
    frame.writeUInt32BE(length, 6);
  }
}

/** The complete frame carrying `text` (a JSON message): encoded straight into the frame, no intermediate copy. */
export function textFrame(text: string): Buffer {
  const length = Buffer.byteLength(text);
  const head = headerBytes(length);
  const frame = Buffer.allocUnsafe(head + length);
  writeHeader(frame, length);
  frame.write(text, head);
  return frame;
}

/** The complete frame carrying `payload`, UTF-8 text already encoded (a relayed frame, as received). */
export function textFrameOf(payload: Buffer): Buffer {
  const head = headerBytes(payload.length);
  const frame = Buffer.allocUnsafe(head + payload.length);
  writeHeader(frame, payload.length);
  frame.set(payload, head);
  return frame;
}

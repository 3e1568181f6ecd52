/**
 * Peers you trust (issue 13): a topic secret the signaling server never learns, and device ids with an allowlist.
 * One small face for the session (and any other command that joins a topic): `TrustOptions` is the typed option
 * group, `loadTrustOptions` reads and checks its files before anything is opened, and `trustForTopic` gives the
 * room name, the signal-channel wrapper and the link gate for one topic.
 */
import { readFile } from 'node:fs/promises';
import { P2PSyncError } from '../core/errors.js';
import type { EmitEvent } from '../core/events.js';
import type { LinkGate } from '../core/link.js';
import type { SignalChannel } from '../core/signal.js';
import { parseAllowlist } from './device-id.js';
import { createTrustGate } from './gate.js';
import { deriveTopicKeys } from './keys.js';
import { SealedSignalChannel } from './sealed-signal.js';

export { identityPath, loadIdentity, loadOrCreateIdentity, type DeviceIdentity } from './identity.js';
export { normalizeDeviceId } from './device-id.js';

/** The trust settings of a session; both parts are optional and combine. */
export interface TrustOptions {
  /** Topic secret (raw bytes). Set: hashed room, sealed signaling and the trust handshake. */
  readonly secret?: Uint8Array | undefined;
  /** Device ids served; every other peer is rejected. */
  readonly allowPeers?: ReadonlySet<string> | undefined;
  /** Handshake time limit (default 10 s). */
  readonly handshakeTimeoutMs?: number | undefined;
}

/** Where the CLI (or a script) says the secret and the allowlist are. */
export interface TrustSources {
  /** A file holding the secret (one trailing newline is ignored). */
  secretFile?: string | undefined;
  /** The secret itself (from `P2PSYNC_SECRET` or the discouraged `--secret`). */
  secret?: string | undefined;
  /** An allowlist file. */
  allowPeersFile?: string | undefined;
}

/** Reads and checks the secret and the allowlist: E_SECRET / E_ALLOWLIST (exit 2) for anything wrong. */
export async function loadTrustOptions(s: TrustSources): Promise<TrustOptions> {
  if (s.secretFile !== undefined && s.secret !== undefined) {
    throw new P2PSyncError('E_SECRET', 'give the secret once: --secret-file or P2PSYNC_SECRET (--secret), not both');
  }
  let secret: Buffer | undefined;
  if (s.secretFile !== undefined) {
    secret = stripNewline(await readOrThrow(s.secretFile, 'E_SECRET', 'secret file'));
    if (secret.toString('utf8').trim() === '')
      throw new P2PSyncError('E_SECRET', `the secret file ${s.secretFile} is empty`, { file: s.secretFile });
  } else if (s.secret !== undefined) {
    if (s.secret.trim() === '') throw new P2PSyncError('E_SECRET', 'the secret is empty');
    secret = Buffer.from(s.secret, 'utf8');
  }
  let allowPeers: ReadonlySet<string> | undefined;
  if (s.allowPeersFile !== undefined) {
    allowPeers = parseAllowlist(
      (await readOrThrow(s.allowPeersFile, 'E_ALLOWLIST', 'allowlist')).toString('utf8'),
      s.allowPeersFile,
    );
  }
  return { secret, allowPeers };
}

/** True when the options restrict who may connect (the session then needs a device identity to present). */
export function trustEnabled(t: TrustOptions): boolean {
  return t.secret !== undefined || t.allowPeers !== undefined;
}

/** Senders whose dropped signals get a `signal-rejected` event of their own, per topic. */
const MAX_REPORTED_SENDERS = 1000;

/** What one topic needs from the trust options. */
export interface TopicTrust {
  /** The room name to give the signaling server (the topic itself when there is no secret). */
  readonly room: string;
  /** Wraps the topic's signal channel (payloads sealed when there is a secret; unchanged otherwise). */
  signal(channel: SignalChannel): SignalChannel;
  /** The gate every link passes before replication; undefined when nothing is restricted. */
  readonly gate: LinkGate | undefined;
}

/** Derives one topic's keys (scrypt: about 0.1 s) and builds its room name, signal wrapper and link gate. */
export function trustForTopic(t: TrustOptions, topic: string, emit: EmitEvent): TopicTrust {
  const keys = t.secret ? deriveTopicKeys(t.secret, topic) : undefined;
  const room = keys?.room ?? topic;
  const gate = trustEnabled(t)
    ? createTrustGate({
        room,
        authKey: keys?.authKey,
        allow: t.allowPeers,
        timeoutMs: t.handshakeTimeoutMs,
        onRejected: (link, reason, deviceId) =>
          emit({ event: 'peer-rejected', topic, peerId: link.remotePeerId, reason, ...(deviceId ? { deviceId } : {}) }),
      })
    : undefined;
  return {
    room,
    gate,
    signal: (channel) => {
      if (!keys) return channel;
      const reported = new Set<string>();
      return new SealedSignalChannel(channel, room, keys.sealKey, (from, reason, total) => {
        // one event per sender and reason (for the first senders only: a hostile relay may invent any number of
        // them); `total` counts every drop of this channel
        const tag = `${from}\0${reason}`;
        if (reported.has(tag) || reported.size >= MAX_REPORTED_SENDERS) return;
        reported.add(tag);
        emit({ event: 'signal-rejected', topic, peerId: from, reason, total });
      });
    },
  };
}

async function readOrThrow(file: string, code: 'E_SECRET' | 'E_ALLOWLIST', what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new P2PSyncError(code, `cannot read the ${what} ${file} (${why})`, { file });
  }
}

function stripNewline(b: Buffer): Buffer {
  let end = b.length;
  if (end > 0 && b[end - 1] === 0x0a) end--;
  if (end > 0 && b[end - 1] === 0x0d) end--;
  return b.subarray(0, end);
}

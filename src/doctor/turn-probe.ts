import { isIP } from 'node:net';
import { hostPortOf, type IceServer } from '../transport/ice.js';
import {
  Attr,
  Class,
  errorCode,
  longTermKey,
  mappedAddress,
  Method,
  decodeAddress,
  encodeRequest,
  find,
  newTransactionId,
  text,
  uint32,
  type LongTermKey,
  type StunMessage,
  type TransportAddress,
} from './stun.js';
import { StunSocket } from './udp.js';

/** REQUESTED-TRANSPORT: UDP (protocol 17) in the first byte (RFC 5766 §14.7). */
const UDP_TRANSPORT = 17 << 24;

export interface TurnAllocation {
  ok: boolean;
  /** The server's refusal, e.g. `401 Unauthorized`, or why there was no answer. */
  error?: string;
  /** STUN error code when the server answered with one (401 wrong credentials, 437, 441, 486, ...). */
  errorCode?: number;
  relayed?: TransportAddress;
  mapped?: TransportAddress;
  ms: number;
}

function describe(m: StunMessage): { error: string; errorCode?: number } {
  const e = errorCode(m);
  return e
    ? { error: `${e.code} ${e.reason}`.trim(), errorCode: e.code }
    : { error: 'an error response without ERROR-CODE' };
}

/**
 * Asks a TURN server (UDP) for an allocation with long-term credentials, as ICE would, and releases it at once
 * (Refresh with LIFETIME 0). Resolves with the outcome; never rejects.
 */
export async function allocateTurn(
  url: string,
  username: string,
  password: string,
  options: { bindAddress?: string; timeoutMs?: number } = {},
): Promise<TurnAllocation> {
  const started = performance.now();
  const ms = (): number => Math.round(performance.now() - started);
  const target = hostPortOf(url);
  if (!target) return { ok: false, error: 'not a turn:host[:port] URL', ms: 0 };
  let socket: StunSocket | undefined;
  try {
    socket = await StunSocket.open(isIP(target.hostname) === 6 ? 6 : 4, options.bindAddress);
    const send = (credentials?: LongTermKey): Promise<StunMessage> => {
      const tid = newTransactionId();
      const request = encodeRequest(
        Method.allocate,
        tid,
        [{ type: Attr.requestedTransport, value: uint32(UDP_TRANSPORT) }],
        credentials,
      );
      return socket!.request(target.hostname, target.port, request, tid, options.timeoutMs);
    };
    let response = await send();
    let key: LongTermKey | undefined;
    // 401 with REALM and NONCE asks for credentials; 438 (stale nonce) asks once more with a new nonce
    for (let round = 0; round < 2 && response.cls === Class.error; round++) {
      const code = errorCode(response)?.code;
      const realm = text(response, Attr.realm) ?? key?.realm;
      const nonce = text(response, Attr.nonce);
      if ((code !== 401 && code !== 438) || realm === undefined || nonce === undefined) break;
      if (code === 401 && key) break; // the credentials were refused
      key = longTermKey(username, realm, password, nonce);
      response = await send(key);
    }
    if (response.cls !== Class.success) return { ok: false, ...describe(response), ms: ms() };
    const relayed = decodeAddress(find(response, Attr.xorRelayedAddress), response.transactionId, true);
    const mapped = mappedAddress(response);
    if (key) {
      const tid = newTransactionId();
      const release = encodeRequest(Method.refresh, tid, [{ type: Attr.lifetime, value: uint32(0) }], key);
      await socket.request(target.hostname, target.port, release, tid, 1_000).catch(() => undefined);
    }
    return { ok: true, ms: ms(), ...(relayed ? { relayed } : {}), ...(mapped ? { mapped } : {}) };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err), ms: ms() };
  } finally {
    socket?.close();
  }
}

/** The TURN probe the connection diagnosis uses: the server's refusal, or undefined when an allocation works. */
export async function probeTurnAllocation(server: IceServer, url: string): Promise<string | undefined> {
  const result = await allocateTurn(url, server.username ?? '', server.credential ?? '');
  return result.ok ? undefined : result.error;
}

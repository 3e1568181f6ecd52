import { P2PSyncError } from '../core/errors.js';

/** An ICE server as in RTCConfiguration (Node has no DOM typings, so it is spelled out here). */
export interface IceServer {
  urls: string | string[];
  username?: string;
  credential?: string;
}

/** ICE settings for every peer connection of a mesh. */
export interface IceConfig {
  /** STUN/TURN servers; none by default (host candidates suffice on loopback and LANs). */
  iceServers?: IceServer[];
  /**
   * Local address libdatachannel binds ICE to (not an RTCConfiguration field, invisible to the remote).
   * `127.0.0.1` keeps ICE on loopback; without it libdatachannel skips `lo` and pairs on other interfaces.
   */
  bindAddress?: string;
}

const SCHEMES = new Set(['stun:', 'turn:', 'turns:']);

function bad(message: string, details: Record<string, unknown>): P2PSyncError {
  return new P2PSyncError('E_BAD_OPTION', message, details);
}

/**
 * An IceServer from one `--ice-server` URL. TURN credentials may be given inline, `turn:user:pass@host:3478`
 * (percent-encoded if they contain `:` or `@`); they are moved to `username` / `credential`, which is where
 * libdatachannel expects them. Throws E_BAD_OPTION for anything that is not a stun:, turn: or turns: URL.
 */
export function iceServerFromUrl(url: string): IceServer {
  const match = /^(stuns?|turns?):(?:([^@:/]*):([^@/]*)@)?([^@/?#\s]+)(\?transport=(?:udp|tcp))?$/i.exec(url.trim());
  if (!match) {
    throw bad(`invalid ICE server URL "${redact(url)}": expected stun:host[:port] or turn[s]:[user:pass@]host[:port]`, {
      url: redact(url),
    });
  }
  const [, scheme = '', user, pass, host = '', transport = ''] = match;
  const server: IceServer = { urls: `${scheme.toLowerCase()}:${host}${transport}` };
  if (user !== undefined && pass !== undefined) {
    server.username = decodeURIComponent(user);
    server.credential = decodeURIComponent(pass);
  }
  validateIceConfig({ iceServers: [server] });
  return server;
}

/** Replaces inline credentials, so URLs can be shown in messages. */
function redact(url: string): string {
  return url.replace(/^([a-z]+:(?:\/\/)?)[^@/]*@/i, '$1***@');
}

/**
 * Checks ICE settings as the polyfill would when creating each peer connection, but once and up front with a
 * precise message: afterwards every connection attempt would fail and be retried forever.
 */
export function validateIceConfig(ice: IceConfig = {}): void {
  for (const server of ice.iceServers ?? []) {
    const urls = Array.isArray(server.urls) ? server.urls : [server.urls];
    if (urls.length === 0) throw bad('an ICE server needs at least one URL', {});
    for (const url of urls) {
      let scheme: string;
      try {
        scheme = new URL(url).protocol;
      } catch {
        throw bad(`invalid ICE server URL "${redact(url)}"`, { url: redact(url) });
      }
      if (!SCHEMES.has(scheme)) {
        throw bad(`ICE server URL "${redact(url)}" must start with stun:, turn: or turns:`, { url: redact(url) });
      }
      if (scheme !== 'stun:' && (!server.username || !server.credential)) {
        const message = `TURN server "${redact(url)}" needs a username and a credential (turn:user:pass@host)`;
        throw bad(message, { url: redact(url) });
      }
    }
  }
  if (ice.bindAddress !== undefined && !/^[0-9a-fA-F.:]+$/.test(ice.bindAddress)) {
    throw bad(`ICE bind address "${ice.bindAddress}" must be an IP address`, { bindAddress: ice.bindAddress });
  }
}

/** The RTCConfiguration handed to simple-peer (which passes it on to the polyfill and libdatachannel). */
export function rtcConfig(ice: IceConfig = {}): Record<string, unknown> {
  // copies: the polyfill normalises `urls` in place
  const config: Record<string, unknown> = { iceServers: (ice.iceServers ?? []).map((s) => ({ ...s })) };
  if (ice.bindAddress !== undefined) config['bindAddress'] = ice.bindAddress;
  return config;
}

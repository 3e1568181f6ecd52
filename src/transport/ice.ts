import { P2PSyncError } from '../core/errors.js';

/** An ICE server as in RTCConfiguration (Node has no DOM typings, so it is spelled out here). */
export interface IceServer {
  urls: string | string[];
  username?: string;
  credential?: string;
}

/** `all`: host, server-reflexive and relayed candidates; `relay`: TURN relays only (RTCIceTransportPolicy). */
export type IceTransportPolicy = 'all' | 'relay';

/** ICE settings for every peer connection of a mesh. */
export interface IceConfig {
  /** STUN/TURN servers; none by default (host candidates suffice on loopback and LANs). */
  iceServers?: IceServer[];
  /**
   * Local address libdatachannel binds ICE to (not an RTCConfiguration field, invisible to the remote).
   * `127.0.0.1` keeps ICE on loopback; without it libdatachannel skips `lo` and pairs on other interfaces.
   */
  bindAddress?: string;
  /** Default `all`. `relay` needs at least one TURN server. */
  transportPolicy?: IceTransportPolicy;
}

/** One server as libdatachannel takes it: no URL parsing on its side, so credentials need no escaping. */
export interface NativeIceServer {
  hostname: string;
  port: number;
  username?: string;
  password?: string;
  relayType?: 'TurnUdp';
}

const SCHEMES = new Set(['stun:', 'turn:']);
const DEFAULT_PORT = 3478;

/**
 * node-datachannel 0.33 is built on libjuice, which relays over UDP only: it logs "TURN transports TCP and TLS
 * are not supported with libjuice" and ignores such a server (checked against coturn 4.6: no TCP connection is
 * ever opened). Accepting those URLs would silently drop the server, so they are refused up front.
 */
const NO_TCP_TURN =
  'TURN over TCP or TLS is not supported: node-datachannel (libjuice) relays over UDP only; use turn:host[:port] (UDP)';

function bad(message: string, details: Record<string, unknown>): P2PSyncError {
  return new P2PSyncError('E_BAD_OPTION', message, details);
}

/**
 * Splits a list of ICE server URLs (`P2PSYNC_ICE_SERVER`, a flag value, a line of a file): commas and
 * whitespace separate them, so a credential containing either must be percent-encoded.
 */
export function splitIceServerList(text: string): string[] {
  return text.split(/[\s,]+/).filter((url) => url !== '');
}

/**
 * An IceServer from one `--ice-server` URL. TURN credentials may be given inline, `turn:user:pass@host:3478`
 * (percent-encoded if they contain `:`, `@`, `,` or spaces); they are moved to `username` / `credential`.
 * Throws E_BAD_OPTION for anything that is not a stun: or UDP turn: URL.
 */
export function iceServerFromUrl(url: string): IceServer {
  const match = /^(stuns?|turns?):(?:([^@:/,\s]*):([^@/,\s]*)@)?([^@/?#,\s]+)(\?transport=(?:udp|tcp))?$/i.exec(
    url.trim(),
  );
  if (!match) {
    throw bad(`invalid ICE server URL "${redact(url)}": expected stun:host[:port] or turn:user:pass@host[:port]`, {
      url: redact(url),
    });
  }
  const [, scheme = '', user, pass, host = '', transport = ''] = match;
  if (/^turns$/i.test(scheme) || /tcp/i.test(transport))
    throw bad(`${NO_TCP_TURN} (got "${redact(url)}")`, { url: redact(url) });
  const server: IceServer = { urls: `${scheme.toLowerCase()}:${host}` };
  if (user !== undefined && pass !== undefined) {
    try {
      server.username = decodeURIComponent(user);
      server.credential = decodeURIComponent(pass);
    } catch {
      throw bad(`invalid percent-encoding in the credentials of "${redact(url)}"`, { url: redact(url) });
    }
  }
  validateIceConfig({ iceServers: [server] });
  return server;
}

/** Replaces inline credentials, so URLs can be shown in messages. */
export function redact(url: string): string {
  return url.replace(/^([a-z]+:(?:\/\/)?)[^@/]*@/i, '$1***@');
}

/** `host[:port]` of a stun:/turn: URL (IPv6 in brackets); undefined when it is not one. */
export function hostPortOf(url: string): { hostname: string; port: number } | undefined {
  const rest = /^(?:stun|turn):([^?#]+)/i.exec(url)?.[1];
  if (!rest) return undefined;
  const match = /^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/.exec(rest) ?? /^([^:[\]\s]+)(?::(\d+))?$/.exec(rest);
  if (!match) return undefined;
  const port = match[2] === undefined ? DEFAULT_PORT : Number(match[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) return undefined;
  return { hostname: match[1]!, port };
}

function urlsOf(server: IceServer): string[] {
  return Array.isArray(server.urls) ? server.urls : [server.urls];
}

/** True when the URL names a TURN server. */
export function isTurnUrl(url: string): boolean {
  return /^turns?:/i.test(url);
}

/**
 * Checks ICE settings as the polyfill would when creating each peer connection, but once and up front with a
 * precise message: afterwards every connection attempt would fail and be retried forever.
 */
export function validateIceConfig(ice: IceConfig = {}): void {
  for (const server of ice.iceServers ?? []) {
    const urls = urlsOf(server);
    if (urls.length === 0) throw bad('an ICE server needs at least one URL', {});
    for (const url of urls) {
      let scheme: string;
      try {
        scheme = new URL(url).protocol;
      } catch {
        throw bad(`invalid ICE server URL "${redact(url)}"`, { url: redact(url) });
      }
      if (scheme === 'turns:' || /[?&]transport=tcp/i.test(url))
        throw bad(`${NO_TCP_TURN} (got "${redact(url)}")`, { url: redact(url) });
      if (!SCHEMES.has(scheme)) {
        throw bad(`ICE server URL "${redact(url)}" must start with stun: or turn:`, { url: redact(url) });
      }
      if (!hostPortOf(url)) throw bad(`invalid host or port in ICE server URL "${redact(url)}"`, { url: redact(url) });
      if (scheme !== 'stun:' && (!server.username || !server.credential)) {
        const message = `TURN server "${redact(url)}" needs a username and a credential (turn:user:pass@host)`;
        throw bad(message, { url: redact(url) });
      }
    }
  }
  if (ice.transportPolicy !== undefined && ice.transportPolicy !== 'all' && ice.transportPolicy !== 'relay') {
    throw bad(`ICE transport policy must be all or relay, got "${String(ice.transportPolicy)}"`, {});
  }
  if (ice.transportPolicy === 'relay' && !(ice.iceServers ?? []).some((s) => urlsOf(s).some(isTurnUrl))) {
    throw bad('--ice-transport relay needs a TURN server (--ice-server turn:user:pass@host:port)', {});
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
  if (ice.transportPolicy === 'relay') config['iceTransportPolicy'] = 'relay';
  return config;
}

/**
 * The servers of an RTCConfiguration as libdatachannel structures. The polyfill would instead glue
 * `turn:user:pass@host` strings together unescaped, which breaks credentials containing `@` or `:`.
 * URLs that do not parse are skipped (validateIceConfig refuses them earlier).
 */
export function nativeIceServers(servers: IceServer[]): NativeIceServer[] {
  const out: NativeIceServer[] = [];
  for (const server of servers) {
    for (const url of urlsOf(server)) {
      const hostPort = hostPortOf(url);
      if (!hostPort) continue;
      if (!isTurnUrl(url)) out.push(hostPort);
      else
        out.push({
          ...hostPort,
          username: server.username ?? '',
          password: server.credential ?? '',
          relayType: 'TurnUdp',
        });
    }
  }
  return out;
}

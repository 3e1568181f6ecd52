/**
 * `p2psync doctor`: checks, each with a verdict and a reason, of what a peer between servers depends on: the
 * signaling server, every STUN server (and the NAT's mapping behaviour), every TURN server, local addresses.
 */
import { networkInterfaces } from 'node:os';
import { isIP } from 'node:net';
import { hostPortOf, iceServerFromUrl, isTurnUrl, redact } from '../transport/ice.js';
import { checkSignaling } from './signal-check.js';
import { Attr, encodeRequest, mappedAddress, Method, newTransactionId, type TransportAddress } from './stun.js';
import { allocateTurn } from './turn-probe.js';
import type { DoctorCheck } from './types.js';
import { StunSocket } from './udp.js';
import type { EventSink } from '../core/events.js';

export type { DoctorCheck } from './types.js';

export interface DoctorOptions {
  signal?: string | undefined;
  /** stun:/turn: URLs as `join` takes them (validated: throws E_BAD_OPTION). */
  iceServers: string[];
  bindAddress?: string | undefined;
  /** Per check; default 5 s. */
  timeoutMs?: number | undefined;
  /** Gets each verdict as soon as it is known. */
  emit?: EventSink<DoctorCheck>;
}

const DEFAULT_TIMEOUT_MS = 5_000;

/** Runs every check; resolves with all verdicts (the command exits 0 only when every one is ok). */
export async function runDoctor(o: DoctorOptions): Promise<DoctorCheck[]> {
  const servers = o.iceServers.map((url) => ({ url, server: iceServerFromUrl(url) }));
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const checks: DoctorCheck[] = [];
  const report = (c: DoctorCheck): void => {
    checks.push(c);
    o.emit?.(c);
  };
  report(checkLocal(o.bindAddress));
  if (o.signal) report(await checkSignaling(o.signal, timeoutMs));
  const stun = servers.filter((s) => !isTurnUrl(s.url));
  const mappings: Array<{ target: string; mapped: TransportAddress }> = [];
  if (stun.length > 0) {
    const family = stun.some((s) => isIP(hostPortOf(s.server.urls as string)?.hostname ?? '') === 6) ? 6 : 4;
    const socket = await StunSocket.open(family, o.bindAddress);
    try {
      for (const { server } of stun) {
        const url = server.urls as string;
        const c = await checkStun(socket, url, timeoutMs);
        if (c.ok) mappings.push({ target: url, mapped: c.details!['mapped'] as TransportAddress });
        report(c);
      }
    } finally {
      socket.close();
    }
  }
  const turn = servers.filter((s) => isTurnUrl(s.url));
  let turnOk = false;
  for (const { server } of turn) {
    const url = server.urls as string;
    const r = await allocateTurn(url, server.username ?? '', server.credential ?? '', {
      ...(o.bindAddress ? { bindAddress: o.bindAddress } : {}),
      timeoutMs,
    });
    turnOk ||= r.ok;
    const reason = r.ok
      ? `allocation granted in ${r.ms} ms: relayed address ${r.relayed?.address}:${r.relayed?.port}`
      : `allocation failed: ${r.error}${r.errorCode === 401 ? ' (wrong username or credential, or wrong realm)' : ''}`;
    report({ check: 'turn', target: redact(url), ok: r.ok, reason, details: { ...r } });
  }
  if (mappings.length >= 2) report(natVerdict(mappings, turnOk));
  return checks;
}

async function checkStun(socket: StunSocket, url: string, timeoutMs: number): Promise<DoctorCheck> {
  const target = hostPortOf(url)!;
  const started = performance.now();
  try {
    const tid = newTransactionId();
    const response = await socket.request(
      target.hostname,
      target.port,
      encodeRequest(Method.binding, tid, [{ type: Attr.software, value: Buffer.from('p2psync doctor') }]),
      tid,
      timeoutMs,
    );
    const mapped = mappedAddress(response);
    const ms = Math.round(performance.now() - started);
    if (!mapped)
      return {
        check: 'stun',
        target: url,
        ok: false,
        reason: 'the response carried no mapped address',
        details: { ms },
      };
    return {
      check: 'stun',
      target: url,
      ok: true,
      reason: `binding answered in ${ms} ms: this host is seen as ${mapped.address}:${mapped.port} (local port ${socket.localPort})`,
      details: { ms, mapped, localPort: socket.localPort },
    };
  } catch (err) {
    return { check: 'stun', target: url, ok: false, reason: `${(err as Error).message} (is UDP to it allowed?)` };
  }
}

/**
 * RFC 4787 mapping behaviour from one local port towards several servers: one mapping for all of them is
 * endpoint-independent (a cone NAT, or none): STUN suffices. Different mappings mean a symmetric NAT: direct
 * paths fail against another symmetric NAT, so a TURN server is needed.
 */
export function natVerdict(
  mappings: Array<{ target: string; mapped: TransportAddress }>,
  turnOk: boolean,
): DoctorCheck {
  const distinct = new Set(mappings.map((m) => `${m.mapped.address}:${m.mapped.port}`));
  const details = { mappings, symmetric: distinct.size > 1 };
  const target = mappings.map((m) => m.target).join(' + ');
  if (distinct.size === 1) {
    return {
      check: 'nat',
      target,
      ok: true,
      reason: `the same mapping (${[...distinct][0]}) towards every STUN server: no NAT or a cone NAT, STUN suffices`,
      details,
    };
  }
  return {
    check: 'nat',
    target,
    ok: turnOk,
    reason: `the mapping changes per destination (${[...distinct].join(', ')}): a symmetric NAT; peers behind it need a TURN relay${turnOk ? ' (the TURN server above works)' : ': add --ice-server turn:USER:PASS@HOST:PORT'}`,
    details,
  };
}

function checkLocal(bindAddress: string | undefined): DoctorCheck {
  const addresses: Array<{ name: string; address: string; family: string; internal: boolean }> = [];
  for (const [name, list] of Object.entries(networkInterfaces())) {
    for (const a of list ?? []) addresses.push({ name, address: a.address, family: a.family, internal: a.internal });
  }
  const external = addresses.filter((a) => !a.internal);
  const listed = external.map((a) => `${a.address} (${a.name})`).join(', ');
  if (bindAddress !== undefined) {
    const ok = addresses.some((a) => a.address === bindAddress);
    return {
      check: 'local',
      target: 'interfaces',
      ok,
      reason: ok
        ? `ICE binds to ${bindAddress}`
        : `--ice-bind ${bindAddress} is not an address of this host (it has ${listed || 'loopback only'})`,
      details: { addresses },
    };
  }
  if (external.length === 0)
    return {
      check: 'local',
      target: 'interfaces',
      ok: false,
      reason: 'only loopback addresses: peers on other hosts cannot reach this one',
      details: { addresses },
    };
  return {
    check: 'local',
    target: 'interfaces',
    ok: true,
    reason: `host candidates: ${listed}`,
    details: { addresses },
  };
}

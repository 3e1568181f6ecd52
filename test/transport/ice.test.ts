import { describe, expect, it } from 'vitest';
import { P2PSyncError } from '../../src/core/errors.js';
import {
  hostPortOf,
  iceServerFromUrl,
  nativeIceServers,
  rtcConfig,
  splitIceServerList,
  validateIceConfig,
} from '../../src/transport/ice.js';
import { MemorySignalHub } from '../../src/transport/memory-signal.js';
import { createMesh } from '../../src/transport/mesh.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof P2PSyncError ? err.code : 'not a P2PSyncError';
  }
  return undefined;
}

describe('iceServerFromUrl', () => {
  it('accepts STUN and TURN URLs, moving inline TURN credentials to username/credential', () => {
    expect(iceServerFromUrl('stun:stun.example.org:3478')).toEqual({ urls: 'stun:stun.example.org:3478' });
    expect(iceServerFromUrl('STUN:stun.example.org')).toEqual({ urls: 'stun:stun.example.org' });
    expect(iceServerFromUrl('turn:alice:s%40c%2Cret@turn.example.org:3478?transport=udp')).toEqual({
      urls: 'turn:turn.example.org:3478',
      username: 'alice',
      credential: 's@c,ret',
    });
    expect(iceServerFromUrl('turn:bob:pw@[2001:db8::1]:3479')).toEqual({
      urls: 'turn:[2001:db8::1]:3479',
      username: 'bob',
      credential: 'pw',
    });
  });

  it('refuses TURN over TCP and TLS, which libjuice cannot do, instead of silently dropping the server', () => {
    for (const url of ['turn:u:p@turn.example.org:3478?transport=tcp', 'turns:u:p@turn.example.org:5349']) {
      expect(() => iceServerFromUrl(url), url).toThrow(/TURN over TCP or TLS is not supported/);
    }
    expect(
      codeOf(() => validateIceConfig({ iceServers: [{ urls: 'turns:x.example', username: 'u', credential: 'c' }] })),
    ).toBe('E_BAD_OPTION');
  });

  it('rejects bad ports and bad percent-encoding', () => {
    for (const url of ['stun:a.example:0', 'stun:a.example:70000', 'turn:u:%zz@a.example']) {
      expect(
        codeOf(() => iceServerFromUrl(url)),
        url,
      ).toBe('E_BAD_OPTION');
    }
  });
});

describe('splitIceServerList', () => {
  it('splits on commas and whitespace, so a STUN and a TURN URL in one variable stay two servers', () => {
    const urls = splitIceServerList('stun:a:3478,turn:u:p@b:3478');
    expect(urls).toEqual(['stun:a:3478', 'turn:u:p@b:3478']);
    expect(urls.map(iceServerFromUrl)).toEqual([
      { urls: 'stun:a:3478' },
      { urls: 'turn:b:3478', username: 'u', credential: 'p' },
    ]);
    expect(splitIceServerList(' stun:a \n\tstun:b ,, stun:c ')).toEqual(['stun:a', 'stun:b', 'stun:c']);
    expect(splitIceServerList('  ')).toEqual([]);
  });
});

describe('native ICE servers', () => {
  it('gives libdatachannel host, port and unescaped credentials', () => {
    expect(hostPortOf('stun:a.example')).toEqual({ hostname: 'a.example', port: 3478 });
    expect(hostPortOf('turn:[::1]:5000')).toEqual({ hostname: '::1', port: 5000 });
    expect(hostPortOf('http://a.example')).toBeUndefined();
    expect(
      nativeIceServers([
        { urls: ['stun:a.example:19302'] },
        { urls: 'turn:b.example', username: 'u@x', credential: 'p:w' },
      ]),
    ).toEqual([
      { hostname: 'a.example', port: 19302 },
      { hostname: 'b.example', port: 3478, username: 'u@x', password: 'p:w', relayType: 'TurnUdp' },
    ]);
  });

  it('passes the relay-only policy on', () => {
    const turn = { urls: 'turn:b.example', username: 'u', credential: 'c' };
    expect(rtcConfig({ iceServers: [turn], transportPolicy: 'relay' })['iceTransportPolicy']).toBe('relay');
    expect(rtcConfig({ iceServers: [turn], transportPolicy: 'all' })['iceTransportPolicy']).toBeUndefined();
  });

  it('rejects other schemes, garbage and TURN without credentials, without echoing secrets', () => {
    for (const url of ['http://example.org', 'stun:', 'example.org:3478', 'turn:turn.example.org', 'stun:a b', '']) {
      expect(
        codeOf(() => iceServerFromUrl(url)),
        url,
      ).toBe('E_BAD_OPTION');
    }
    let message = '';
    try {
      iceServerFromUrl('http://alice:topsecret@example.org');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/invalid ICE server URL/);
    expect(message).not.toContain('topsecret');
  });
});

describe('validateIceConfig', () => {
  it('accepts the defaults, loopback and valid servers', () => {
    expect(() => validateIceConfig()).not.toThrow();
    expect(() => validateIceConfig({ iceServers: [], bindAddress: '127.0.0.1' })).not.toThrow();
    expect(() => validateIceConfig({ bindAddress: '::1' })).not.toThrow();
    expect(() =>
      validateIceConfig({
        iceServers: [{ urls: ['stun:a.example', 'turn:b.example'], username: 'u', credential: 'c' }],
        transportPolicy: 'relay',
      }),
    ).not.toThrow();
  });

  it('rejects what would make every connection attempt fail', () => {
    expect(codeOf(() => validateIceConfig({ iceServers: [{ urls: [] }] }))).toBe('E_BAD_OPTION');
    expect(codeOf(() => validateIceConfig({ iceServers: [{ urls: 'ftp://x' }] }))).toBe('E_BAD_OPTION');
    expect(codeOf(() => validateIceConfig({ iceServers: [{ urls: 'turn:x.example' }] }))).toBe('E_BAD_OPTION');
    expect(codeOf(() => validateIceConfig({ bindAddress: 'localhost' }))).toBe('E_BAD_OPTION');
    // relay-only without a TURN server could never connect
    expect(
      codeOf(() => validateIceConfig({ iceServers: [{ urls: 'stun:a.example' }], transportPolicy: 'relay' })),
    ).toBe('E_BAD_OPTION');
    expect(codeOf(() => validateIceConfig({ transportPolicy: 'direct' as 'all' }))).toBe('E_BAD_OPTION');
  });

  it('is applied by createMesh, before anything starts', () => {
    const signal = new MemorySignalHub().createClient();
    expect(codeOf(() => createMesh({ signal, ice: { iceServers: [{ urls: 'nope' }] } }))).toBe('E_BAD_OPTION');
  });
});

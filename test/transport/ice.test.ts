import { describe, expect, it } from 'vitest';
import { P2PSyncError } from '../../src/core/errors.js';
import { iceServerFromUrl, validateIceConfig } from '../../src/transport/ice.js';
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
    expect(iceServerFromUrl('turn:alice:s%40cret@turn.example.org:3478?transport=tcp')).toEqual({
      urls: 'turn:turn.example.org:3478?transport=tcp',
      username: 'alice',
      credential: 's@cret',
    });
    expect(iceServerFromUrl('turns:bob:pw@turn.example.org')).toEqual({
      urls: 'turns:turn.example.org',
      username: 'bob',
      credential: 'pw',
    });
  });

  it('rejects other schemes, garbage and TURN without credentials, without echoing secrets', () => {
    for (const url of ['http://example.org', 'stun:', 'example.org:3478', 'turn:turn.example.org', 'stun:a b', '']) {
      expect(codeOf(() => iceServerFromUrl(url)), url).toBe('E_BAD_OPTION');
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
      }),
    ).not.toThrow();
  });

  it('rejects what would make every connection attempt fail', () => {
    expect(codeOf(() => validateIceConfig({ iceServers: [{ urls: [] }] }))).toBe('E_BAD_OPTION');
    expect(codeOf(() => validateIceConfig({ iceServers: [{ urls: 'ftp://x' }] }))).toBe('E_BAD_OPTION');
    expect(codeOf(() => validateIceConfig({ iceServers: [{ urls: 'turn:x.example' }] }))).toBe('E_BAD_OPTION');
    expect(codeOf(() => validateIceConfig({ bindAddress: 'localhost' }))).toBe('E_BAD_OPTION');
  });

  it('is applied by createMesh, before anything starts', () => {
    const signal = new MemorySignalHub().createClient();
    expect(codeOf(() => createMesh({ signal, ice: { iceServers: [{ urls: 'nope' }] } }))).toBe('E_BAD_OPTION');
  });
});

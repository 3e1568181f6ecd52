import { describe, expect, it } from 'vitest';
import type { SignalMessage, SignalStatus } from '../../src/core/signal.js';
import { MemorySignalHub } from '../../src/transport/memory-signal.js';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('MemorySignalHub', () => {
  it('assigns ids, reports status before the member list, and sends the list minus own id to everyone', async () => {
    const hub = new MemorySignalHub();
    const a = hub.createClient(['aaaa']);
    const b = hub.createClient(['bbbb']);
    const seen: string[] = [];
    a.onStatus((s: SignalStatus) => seen.push(`status:${s.connected}:${s.peerId}`));
    a.onPeers((ids) => seen.push(`peers:${ids.join(',')}`));
    expect(a.peerId).toBeUndefined();
    expect(a.connect()).toBe('aaaa');
    expect(seen).toEqual([]); // asynchronous, like a socket
    await tick();
    b.connect();
    await tick();
    expect(seen).toEqual(['status:true:aaaa', 'peers:', 'peers:bbbb']);
    expect(a.peers).toEqual(['bbbb']);
    expect(b.peers).toEqual(['aaaa']);
  });

  it('relays signals asynchronously with the connectionId, and only to the current id', async () => {
    const hub = new MemorySignalHub();
    const a = hub.createClient(['aaaa', 'aaab']);
    const b = hub.createClient(['bbbb']);
    a.connect();
    b.connect();
    const got: SignalMessage[] = [];
    b.onSignal((m) => got.push(m));
    a.sendSignal('bbbb', { type: 'offer', sdp: 'x' }, 'conn');
    a.sendSignal('bbbb', { type: 'answer', sdp: 'y' });
    expect(got).toEqual([]);
    await tick();
    expect(got).toEqual([
      { from: 'aaaa', data: { type: 'offer', sdp: 'x' }, connectionId: 'conn' },
      { from: 'aaaa', data: { type: 'answer', sdp: 'y' } },
    ]);
    // b reconnecting under a new id must not receive what was addressed to the old one
    const c = hub.createClient(['cccc']);
    c.connect();
    const atC: SignalMessage[] = [];
    c.onSignal((m) => atC.push(m));
    a.sendSignal('cccc', 'to-c', 'x');
    c.disconnect();
    c.connect();
    await tick();
    expect(atC).toEqual([]);
  });

  it('drops what a disconnected client sends, announces its leaving, and gives it a new id on reconnect', async () => {
    const hub = new MemorySignalHub();
    const a = hub.createClient(['aaaa', 'aaab']);
    const b = hub.createClient(['bbbb']);
    a.connect();
    b.connect();
    await tick();
    const statuses: SignalStatus[] = [];
    a.onStatus((s) => statuses.push(s));
    a.disconnect();
    a.sendSignal('bbbb', 'lost', 'c');
    expect(hub.relayed).toBe(0);
    await tick();
    expect(statuses).toEqual([{ connected: false }]);
    expect(b.peers).toEqual([]);
    expect(a.peers).toEqual([]);
    expect(a.connect()).toBe('aaab');
    await tick();
    expect(b.peers).toEqual(['aaab']);
  });

  it('lets a filter drop signals', async () => {
    const hub = new MemorySignalHub();
    const a = hub.createClient(['aaaa']);
    const b = hub.createClient(['bbbb']);
    a.connect();
    b.connect();
    hub.filter = (m) => (m.connectionId === 'drop-me' ? 'drop' : 'deliver');
    const got: unknown[] = [];
    b.onSignal((m) => got.push(m.data));
    a.sendSignal('bbbb', 1, 'drop-me');
    a.sendSignal('bbbb', 2, 'keep');
    await tick();
    expect(got).toEqual([2]);
  });
});

import { describe, expect, it } from 'vitest';
import { decodeRelay, encodeRelay, parseClusterEvent, RemoteView } from '../../src/signaling/cluster-view.js';

describe('signaling cluster: remote view and messages', () => {
  it('parses only well-formed events', () => {
    expect(parseClusterEvent('{"t":"j","n":"node1","r":"room-1","p":"peer1","a":5}')).toEqual({
      t: 'j',
      n: 'node1',
      r: 'room-1',
      p: 'peer1',
      a: 5,
    });
    expect(parseClusterEvent('{"t":"b","n":"node1"}')).toEqual({ t: 'b', n: 'node1' });
    for (const bad of [
      'null',
      '[]',
      '"x"',
      '{',
      '{"t":"j","n":"n","r":"r","p":"p"}',
      '{"t":"x","n":"n"}',
      '{"t":"l","n":"","r":"r","p":"p"}',
      '{"t":"j","n":"n","r":"r","p":"p","a":"1"}',
    ]) {
      expect(parseClusterEvent(bad)).toBeUndefined();
    }
  });

  it('round-trips relayed frames verbatim and rejects malformed ones', () => {
    const raw = '{"type":"signal","data":"line\\nbreak"}';
    expect(decodeRelay(encodeRelay('peer1', raw))).toEqual({ receiverId: 'peer1', raw });
    expect(decodeRelay('no-newline')).toBeUndefined();
    expect(decodeRelay('\n{}')).toBeUndefined();
  });

  it('tracks remote members of interesting rooms only, ignores its own node, drops a node that says goodbye', () => {
    const v = new RemoteView('self');
    const mine = (room: string) => room === 'room-a';
    expect(v.apply({ t: 'j', n: 'n2', r: 'room-a', p: 'p2', a: 2 }, mine)).toEqual(['room-a']);
    expect(v.apply({ t: 'j', n: 'n3', r: 'room-a', p: 'p1', a: 1 }, mine)).toEqual(['room-a']);
    expect(v.apply({ t: 'j', n: 'n2', r: 'room-b', p: 'p9', a: 1 }, mine)).toEqual([]);
    expect(v.apply({ t: 'j', n: 'self', r: 'room-a', p: 'p0', a: 0 }, mine)).toEqual([]);
    expect(v.members('room-a')).toEqual(['p1', 'p2']);
    expect(v.nodeOf('room-a', 'p2')).toBe('n2');
    // A leave from the wrong node (a stale event) changes nothing.
    expect(v.apply({ t: 'l', n: 'n3', r: 'room-a', p: 'p2' }, mine)).toEqual([]);
    expect(v.apply({ t: 'b', n: 'n2' }, mine)).toEqual(['room-a']);
    expect(v.members('room-a')).toEqual(['p1']);
    expect(v.replace('room-a', new Map([['p1', { node: 'n3', at: 1 }]]))).toBe(false);
    expect(v.replace('room-a', new Map())).toBe(true);
    expect(v.size).toBe(0);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryLinkPair } from '../../src/transport/memory-link.js';
import { masterWins } from '../../src/replication/conflict.js';
import { replicate, type PeerReplication } from '../../src/replication/peer-replication.js';
import { ObserverLink } from '../../src/verify/observer.js';
import { bisect } from '../../src/verify/bisect.js';
import { DIGEST_METHOD } from '../../src/verify/protocol.js';
import type { SyncEvent } from '../../src/core/events.js';
import { doc, put, RawPeer, seed, store } from '../replication/helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** A replica (a `join`'s replication over a store) on one end of a memory link, an observer on the other. */
function replicaAndObserver(s = store('rrrrrrrrrr'), id = 'replica') {
  const [replicaEnd, observerEnd] = createMemoryLinkPair(id, 'observer');
  const events: SyncEvent[] = [];
  const rep = replicate({
    store: s,
    meta: s,
    link: replicaEnd,
    topic: 'topic-1',
    conflict: masterWins(),
    batchSize: 100,
    emit: (e) => events.push(e),
  });
  const observer = new ObserverLink(observerEnd, { ownToken: 'vvvvvvvvvv', timeoutMs: 5_000 });
  cleanups.push(
    () => rep.close(),
    () => observer.close(),
  );
  return { s, rep, observer, events };
}

function stateChange(rep: PeerReplication, pred: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    if (pred()) return resolve();
    rep.onStateChange(() => pred() && resolve());
  });
}

describe('a replica and an observer', () => {
  it('the replica serves digests, recognises the observer and sends it no documents', async () => {
    const { s, rep, observer, events } = replicaAndObserver();
    await seed(s, 50);
    await expect(observer.classify()).resolves.toEqual({ peerId: 'replica', kind: 'p2psync', peerToken: 'rrrrrrrrrr' });
    await stateChange(rep, () => rep.observer);
    await expect(rep.ready).rejects.toThrow(/observer/);
    expect(rep.role).toBeUndefined();
    const [root] = await observer.digest({ ranges: [[null, null]], leaves: 16, split: 4 });
    expect(root).toMatchObject({ count: 50 });
    // A local write after the snapshot: the replica would stream it to a fork; an observer gets nothing, and later
    // answers on the link still come from the first snapshot (a consistent bisection).
    await put(s, doc('new', { n: 1 }));
    const [again] = await observer.digest({ ranges: [[null, null]], leaves: 16, split: 4 });
    expect(again).toEqual(root);
    expect(rep.stats).toMatchObject({ sent: 0, received: 0, pulled: 0, pushed: 0 });
    // the digest answer above is the barrier: a stream event or a request sent before it would have arrived first
    expect(observer.rejected).toBe(0);
    expect(events.filter((e) => e.event === 'error' || e.event === 'warning')).toEqual([]);
  });

  it('finds the differing ids between two replicas through their links', async () => {
    const a = replicaAndObserver(store('aaaaaaaaaa'), 'peer-a');
    const b = replicaAndObserver(store('bbbbbbbbbb'), 'peer-b');
    await seed(a.s, 300);
    await seed(b.s, 300);
    await put(b.s, doc('d-000007', { n: -1 }), doc('extra', {}));
    await Promise.all([a.observer.classify(), b.observer.classify()]);
    const r = await bisect([a.observer, b.observer], { leaves: 4, split: 4 });
    expect(r.differing.map((d) => d.id)).toEqual(['d-000007', 'extra']);
    expect(r.differing[1]!.leaves[0]).toBeNull();
  });

  it('classifies a peer that announces nothing (RxDB) and another observer', async () => {
    const [rawEnd, observerEnd] = createMemoryLinkPair('rxdb', 'observer');
    const raw = new RawPeer(rawEnd, 'xxxxxxxxxx');
    const observer = new ObserverLink(observerEnd, { ownToken: 'vvvvvvvvvv', timeoutMs: 5_000 });
    cleanups.push(() => observer.close());
    raw.sendJson({ id: 'r|0', method: 'token', params: [] });
    await expect(observer.classify()).resolves.toEqual({ peerId: 'rxdb', kind: 'rxdb', peerToken: 'xxxxxxxxxx' });
    // RxDB got an error for its token request, so it ignores this peer (its replicateWebRTC returns on it)
    await raw.waitFor(() => raw.responses.has('r|0'), 'the token answer');
    expect(raw.responses.get('r|0')!.error).toMatchObject({ code: 'E_OBSERVER' });

    const [o1, o2] = createMemoryLinkPair('o1', 'o2');
    const first = new ObserverLink(o1, { ownToken: 'oooooooooo', timeoutMs: 5_000 });
    const second = new ObserverLink(o2, { ownToken: 'pppppppppp', timeoutMs: 5_000 });
    cleanups.push(
      () => first.close(),
      () => second.close(),
    );
    await expect(Promise.all([first.classify(), second.classify()])).resolves.toEqual([
      { peerId: 'o2', kind: 'observer' },
      { peerId: 'o1', kind: 'observer' },
    ]);
  });

  it('an observer refuses a replica whose digest answers do not fit the query', async () => {
    const [rawEnd, observerEnd] = createMemoryLinkPair('liar', 'observer');
    const raw = new RawPeer(rawEnd, 'llllllllll');
    const observer = new ObserverLink(observerEnd, { ownToken: 'vvvvvvvvvv', timeoutMs: 5_000 });
    cleanups.push(() => observer.close());
    const answers: unknown[] = [
      null,
      [{ count: 5, digest: 'a'.repeat(64), bounds: [] }],
      [{ count: 1, digest: 'a'.repeat(64), entries: [['outside', 'a'.repeat(64)]] }],
      [{ count: 1e300, digest: 'a'.repeat(64), bounds: ['m'] }],
    ];
    raw.autoAnswer = () => answers.shift();
    for (let i = 0; i < 4; i++) {
      await expect(observer.digest({ ranges: [['a', 'b']], leaves: 4, split: 4 })).rejects.toMatchObject({
        code: 'E_PROTOCOL',
      });
    }
    expect(observer.rejected).toBe(4);
  });

  it('a replica answers hostile digest requests with errors and keeps serving', async () => {
    const s = store('rrrrrrrrrr');
    await seed(s, 10);
    const [replicaEnd, rawEnd] = createMemoryLinkPair('replica', 'raw');
    const events: SyncEvent[] = [];
    const rep = replicate({
      store: s,
      meta: s,
      link: replicaEnd,
      topic: 'topic-1',
      conflict: masterWins(),
      batchSize: 100,
      emit: (e) => events.push(e),
    });
    cleanups.push(() => rep.close());
    const raw = new RawPeer(rawEnd, 'zzzzzzzzzz');
    for (const params of [
      [],
      [null],
      [{ ranges: [['b', 'a']], leaves: 1, split: 2 }],
      [{ ranges: [[null, null]], leaves: 1e9, split: 2 }],
      [{ ranges: 'x', leaves: 1, split: 2 }],
    ]) {
      const answer = await raw.request(DIGEST_METHOD, params);
      expect(answer.error).toMatchObject({ code: 'E_PROTOCOL' });
    }
    const good = await raw.request(DIGEST_METHOD, [{ ranges: [[null, null]], leaves: 16, split: 2 }]);
    expect(good.result).toMatchObject([{ count: 10 }]);
    expect(rep.stats.rejected).toBe(5);
    expect(events.filter((e) => e.event === 'warning').length).toBe(5);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import type { Checkpoint, DocState } from '../../src/core/types.js';
import { createMemoryLinkPair } from '../../src/transport/memory-link.js';
import {
  FORK_TOKEN,
  MASTER_TOKEN,
  RawPeer,
  allIdle,
  digest,
  doc,
  put,
  seed,
  side,
  store,
  until,
  type Side,
} from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

function setup(ownToken: string, rawToken: string): { a: Side; raw: RawPeer } {
  const [linkA, linkB] = createMemoryLinkPair('raw', 'a');
  const raw = new RawPeer(linkB, rawToken);
  const a = side(store(ownToken), linkA, { batchSize: 10 });
  cleanups.push(async () => {
    await a.rep.close();
    linkA.close();
  });
  return { a, raw };
}

interface Page {
  checkpoint: Checkpoint | null;
  documents: DocState[];
}

describe('a master facing a hostile peer', () => {
  it('pages exactly batchSize while more remain, tombstones included', async () => {
    const { a, raw } = setup(MASTER_TOKEN, FORK_TOKEN);
    await seed(a.store, 30, 'p');
    await put(a.store, doc('p-000004', {}, true));
    await a.rep.ready;
    const sizes: number[] = [];
    let checkpoint: Checkpoint | null = null;
    const ids: string[] = [];
    for (;;) {
      const r = await raw.request('masterChangesSince', [checkpoint, 7]);
      const page = r.result as Page;
      sizes.push(page.documents.length);
      ids.push(...page.documents.map((d) => d.id as string));
      if (page.documents.length === 0) {
        expect(page.checkpoint).toEqual(checkpoint); // echoed
        break;
      }
      checkpoint = page.checkpoint;
      expect(checkpoint).toEqual({ id: expect.any(String), lwt: expect.any(Number) });
    }
    expect(sizes).toEqual([7, 7, 7, 7, 2, 0]);
    expect(new Set(ids).size).toBe(30);
    expect(ids.at(-1)).toBe('p-000004'); // the tombstone, written last
    // RxDB-compatible answers to odd checkpoints: an empty page that echoes them
    expect((await raw.request('masterChangesSince', [{}, 5])).result).toEqual({ checkpoint: {}, documents: [] });
    expect((await raw.request('masterChangesSince', ['abc', 5])).result).toEqual({ checkpoint: 'abc', documents: [] });
    expect((await raw.request('masterChangesSince', [null, 'x'])).error).toBeDefined();
  });

  it('serves a page ahead (p2psync extension) as the page that follows, and refuses hostile skips', async () => {
    const { a, raw } = setup(MASTER_TOKEN, FORK_TOKEN);
    await seed(a.store, 30, 'p');
    await a.rep.ready;
    const first = (await raw.request('masterChangesSince', [null, 7])).result as Page;
    const ahead = (await raw.request('masterChangesSince', [null, 7, { p2psyncSkip: 7 }])).result as Page & {
      p2psyncFrom?: unknown;
    };
    const second = (await raw.request('masterChangesSince', [first.checkpoint, 7])).result as Page;
    expect(ahead).toEqual({ ...second, p2psyncFrom: first.checkpoint });
    expect(second.documents).toHaveLength(7);
    // Fewer documents than the skip: nothing follows.
    expect((await raw.request('masterChangesSince', [null, 7, { p2psyncSkip: 40 }])).result).toEqual({
      checkpoint: null,
      documents: [],
    });
    for (const skip of [-1, 1.5, 'x', 1e12, null]) {
      expect((await raw.request('masterChangesSince', [null, 7, { p2psyncSkip: skip }])).error).toBeDefined();
    }
    // An RxDB-style third parameter it does not know is ignored.
    expect((await raw.request('masterChangesSince', [null, 7, { other: 1 }])).result).toEqual(first);
  });

  it('survives malformed frames, writes nothing bad and keeps serving', async () => {
    const { a, raw } = setup(MASTER_TOKEN, FORK_TOKEN);
    await seed(a.store, 5, 'h');
    await a.rep.ready;
    await raw.waitFor(() => raw.stream.includes('RESYNC'), 'RESYNC');
    const before = await digest(a.store);

    const frames = [
      'not json',
      '{"unterminated":',
      'null',
      '[]',
      '[{"id":"x","method":"token"}]',
      '42',
      '"a string"',
      'true',
      '{}',
      '{"id":5,"method":"masterWrite","params":[[]]}',
      '{"method":"masterWrite","params":[[]]}',
      '{"id":"nope","result":[]}',
      '{"id":"nope","result":null,"error":{"name":"X"}}',
      '{"id":"masterChangeStream$","result":{"checkpoint":null,"documents":[{"id":"sneaky"}]}}',
      '{"chunk":{"id":"c1","index":0,"total":1e300,"data":"x"}}',
      '{"chunk":{"id":"c1","index":-1,"total":2,"data":"x"}}',
      '{"chunk":{"id":"c1","index":7,"total":2,"data":"x"}}',
      '{"chunk":{"id":"c1","index":0.5,"total":2,"data":"x"}}',
      '{"chunk":{"id":"c1","index":0,"total":2,"data":5}}',
      '{"chunk":"yes"}',
      '{"chunk":{"id":"single","index":0,"total":1,"data":"not json either"}}',
      '{"chunk":{"id":"single2","index":0,"total":1,"data":"null"}}',
      '{"__proto__":{"polluted":true},"id":"p","method":"token"}',
    ];
    for (const f of frames) raw.send(f);
    // many sets that never complete (each evicts an older one; fewer than maxRejectedInputs, which would drop us)
    for (let i = 0; i < 500; i++)
      raw.sendJson({ chunk: { id: `set${i}`, index: 0, total: 8192, data: 'x'.repeat(100) } });

    const unknown = await raw.request('evilMethod', [1, 2, 3]);
    expect(unknown.error).toMatchObject({ name: 'P2PSyncError', code: 'E_PROTOCOL' });
    expect(unknown.result).toBeNull();
    const badParams = await raw.request('masterWrite', 'not an array' as unknown as unknown[]);
    expect(badParams.error).toBeDefined();

    const invalidRows: unknown[] = [
      null,
      [null],
      [{}],
      [{ newDocumentState: null }],
      [{ newDocumentState: { title: 'no key' } }],
      [{ newDocumentState: { id: '' } }],
      [{ newDocumentState: { id: 7 } }],
      [{ newDocumentState: { id: 'ok' } }, { newDocumentState: { id: 'bad', _deleted: 'yes' } }],
      [{ newDocumentState: { id: '__proto__' } }],
      [{ newDocumentState: { id: 'x', nested: [{ deeper: { ['__proto__']: { polluted: true } } }] } }],
      [{ newDocumentState: { id: 'x' }, assumedMasterState: 'nope' }],
      [{ newDocumentState: { id: 'x' }, assumedMasterState: { id: 'other' } }],
    ];
    for (const rows of invalidRows) {
      const r = await raw.request('masterWrite', [rows]);
      expect(r.error, JSON.stringify(rows)).toBeDefined();
      expect(r.result).toBeNull();
    }
    // a JSON text with a __proto__ member (JSON.parse makes it an own property)
    raw.send(
      '{"id":"proto","method":"masterWrite","params":[[{"newDocumentState":{"id":"pp","__proto__":{"polluted":true}}}]]}',
    );
    await raw.waitFor(() => raw.responses.has('proto'), 'the __proto__ answer');
    expect(raw.responses.get('proto')!.error).toBeDefined();

    expect(await digest(a.store)).toBe(before);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(a.rep.stats.rejected).toBeGreaterThan(frames.length);
    const warnings = a.events.filter((e) => e.event === 'warning').map((e) => (e.event === 'warning' ? e.message : ''));
    // five refusals are reported (the rest only counted), plus one for the stream event a fork never sends
    expect(warnings.length).toBe(6);
    expect(warnings.filter((w) => /streams changes as master too/.test(w)).length).toBe(1);
    expect(a.events.filter((e) => e.event === 'error')).toEqual([]);

    // still fully working: valid writes, conflicts, pages, and the change stream
    const ok = await raw.request('masterWrite', [
      [{ newDocumentState: { id: 'fine', constructor: { prototype: { polluted: true } } } }],
    ]);
    expect(ok).toEqual({ result: [], error: undefined });
    const conflict = await raw.request('masterWrite', [[{ newDocumentState: { id: 'h-000001', n: 'x' } }]]);
    expect(conflict.result).toEqual([{ id: 'h-000001', n: 1, _deleted: false }]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await a.store.get(['fine'])).get('fine')).toEqual({
      id: 'fine',
      constructor: { prototype: { polluted: true } },
      _deleted: false,
    });
    const page = (await raw.request('masterChangesSince', [null, 100])).result as Page;
    expect(page.documents.length).toBe(6);
    await put(a.store, doc('after', { v: 1 }));
    await raw.waitFor(
      () => raw.stream.some((e) => typeof e === 'object' && (e as Page).documents.some((d) => d.id === 'after')),
      'a stream event with the new document',
    );
  });
});

describe('a fork pulling from a p2psync master', () => {
  const page = (prefix: string, from: number, to: number): { checkpoint: Checkpoint; documents: DocState[] } => ({
    checkpoint: { id: `${prefix}${to - 1}`, lwt: to - 1 },
    documents: Array.from({ length: to - from }, (_, i) => doc(`${prefix}${from + i}`, { n: from + i })),
  });

  it('asks for pages ahead, takes those that continue, and drops one the feed moved under', async () => {
    const { a, raw } = setup(FORK_TOKEN, MASTER_TOKEN);
    raw.sendJson({ id: 'raw|hello', method: 'token', params: [{ p2psync: 2 }] });
    await a.rep.ready;
    expect(a.rep.role).toBe('fork');
    const first = await raw.nextRequest('masterChangesSince');
    expect(first.params).toEqual([null, 10]);
    raw.sendJson({ id: first.id, result: page('m', 0, 10) });
    // The next page and two pages ahead of it, all relative to the last page taken.
    const cp = (n: number): Checkpoint => ({ id: `m${n}`, lwt: n });
    const pages = (): Array<{ id: string; method: string; params: unknown[] }> =>
      raw.requests.filter((r) => r.method === 'masterChangesSince');
    await raw.waitFor(() => pages().length === 4, 'three more requests');
    const [next, ahead1, ahead2] = pages().slice(1);
    expect([next, ahead1, ahead2].map((r) => r!.params)).toEqual([
      [cp(9), 10],
      [cp(9), 10, { p2psyncSkip: 10 }],
      [cp(9), 10, { p2psyncSkip: 20 }],
    ]);
    raw.sendJson({ id: next!.id, result: page('m', 10, 20) });
    // Continues the pages taken: applied. Then one that claims to start elsewhere: dropped, with what follows it.
    raw.sendJson({ id: ahead1!.id, result: { ...page('m', 20, 30), p2psyncFrom: cp(19) } });
    raw.sendJson({ id: ahead2!.id, result: { ...page('x', 30, 40), p2psyncFrom: cp(28) } });
    // The round starts again where the pages taken end, with a plain request.
    const isAgain = (r: { method: string; params: unknown[] }): boolean =>
      r.method === 'masterChangesSince' && r.params.length === 2 && (r.params[0] as Checkpoint | null)?.id === 'm29';
    await raw.waitFor(() => raw.requests.some(isAgain), 'a plain request after the pages taken');
    const again = raw.requests.find(isAgain)!;
    raw.autoAnswer = (r) =>
      r.method === 'masterChangesSince'
        ? { checkpoint: r.params[0], documents: [] }
        : r.method === 'masterWrite'
          ? []
          : undefined;
    raw.sendJson({ id: again.id, result: page('m', 30, 35) });
    await until(async () => (await a.store.get(['m34'])).has('m34'), [a.rep], [a.store], 'the last page');
    const all = (await a.store.changesSince(null, 100)).documents.map((d) => d.id);
    expect(all).toEqual(Array.from({ length: 35 }, (_, i) => `m${i}`));
  });
});

describe('a fork facing a hostile master', () => {
  it('applies only valid documents and recovers from bad answers', async () => {
    const { a, raw } = setup(FORK_TOKEN, MASTER_TOKEN);
    await put(a.store, doc('local', { v: 1 }));
    await a.rep.ready;
    expect(a.rep.role).toBe('fork');

    // first pull: an error answer; the fork retries after its retry delay
    const first = await raw.nextRequest('masterChangesSince');
    raw.sendJson({ id: first.id, result: null, error: { name: 'Error', message: 'try later' } });
    const second = await raw.nextRequest('masterChangesSince', raw.requests.indexOf(first) + 1);
    expect(second.params).toEqual([null, 5]); // the page size is halved after a failure
    // then a page whose checkpoint is unusable
    raw.sendJson({ id: second.id, result: { checkpoint: { ['__proto__']: { x: 1 } }, documents: [] } });
    raw.send(`{"id":"${second.id}","result":{"checkpoint":{"__proto__":{"x":1}},"documents":[]}}`);
    const third = await raw.nextRequest('masterChangesSince', raw.requests.indexOf(second) + 1);
    raw.sendJson({
      id: third.id,
      result: {
        checkpoint: { id: 'm3', lwt: 3 },
        documents: [
          { id: 'm1', v: 1, _deleted: false },
          { id: 'bad1', _deleted: 'nope' },
          { title: 'no key' },
          null,
          { id: 'm2', deep: { list: [{ ok: true }] } },
          { id: 'bad2', nested: { inner: JSON.parse('{"__proto__":{"polluted":true}}') as unknown } },
          { id: 5 },
          { id: 'm3', v: 3, _rev: '1-abc', _meta: { lwt: 1 } },
        ],
      },
    });
    await until(async () => (await a.store.get(['m3'])).has('m3'), [a.rep], [a.store], 'the valid documents');
    const got = await a.store.get(['m1', 'm2', 'm3', 'bad1', 'bad2']);
    expect([...got.keys()].sort()).toEqual(['m1', 'm2', 'm3']);
    expect(got.get('m3')).toEqual({ id: 'm3', v: 3, _deleted: false });

    // from now on further pulls get an empty page, so the first sync ends and the upstream starts
    raw.autoAnswer = (r) => {
      if (r.method === 'masterChangesSince') return { checkpoint: r.params[0], documents: [] };
      // the fork's in-sync marker: an empty masterWrite
      if (r.method === 'masterWrite' && Array.isArray(r.params[0]) && r.params[0].length === 0) return [];
      return undefined;
    };
    for (const r of raw.requests.slice(raw.requests.indexOf(third) + 1)) {
      if (r.method === 'masterChangesSince')
        raw.sendJson({ id: r.id, result: { checkpoint: r.params[0], documents: [] } });
    }
    // the fork pushes its local document: answer with garbage first, then properly
    const push1 = await raw.nextRequest('masterWrite');
    expect(push1.params).toEqual([[{ newDocumentState: { id: 'local', v: 1, _deleted: false } }]]);
    raw.sendJson({ id: push1.id, result: { not: 'an array' } });
    const push2 = await raw.nextRequest('masterWrite', raw.requests.indexOf(push1) + 1);
    raw.sendJson({ id: push2.id, result: [] });
    await allIdle([a.rep]);

    // hostile stream events are refused, a valid one is applied
    for (const result of [
      5,
      'RESYNC!',
      null,
      [],
      { checkpoint: 'x', documents: [] },
      { checkpoint: null, documents: 'x' },
      { checkpoint: { id: 'm4', lwt: 4 }, documents: [{ nope: 1 }] },
    ]) {
      raw.sendJson({ id: 'masterChangeStream$', result });
    }
    raw.sendJson({
      id: 'masterChangeStream$',
      result: { checkpoint: { id: 'm5', lwt: 5 }, documents: [{ id: 'm5', v: 5 }] },
    });
    await until(async () => (await a.store.get(['m5'])).has('m5'), [a.rep], [a.store], 'the streamed document');
    await allIdle([a.rep]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(a.rep.stats.rejected).toBeGreaterThanOrEqual(8);
    const errors = a.events.filter((e) => e.event === 'error').map((e) => (e.event === 'error' ? e.code : ''));
    expect(errors).toEqual(['E_PEER', 'E_PROTOCOL', 'E_PROTOCOL']);
    expect((await a.store.all()).map((d) => d.id)).toEqual(['local', 'm1', 'm2', 'm3', 'm5']);
  });
});

describe('a peer over the bounds of one link is dropped', () => {
  function rejectedSetup(
    limits: Record<string, number>,
    hold = false,
  ): { a: Side; raw: RawPeer; closed: Promise<void>; release: () => void } {
    const [linkA, linkB] = createMemoryLinkPair('raw', 'a');
    const raw = new RawPeer(linkB, FORK_TOKEN);
    const s = store(MASTER_TOKEN);
    let release = (): void => {};
    if (hold) {
      // A store whose writes wait: requests pile up behind the first one, as behind a slow disk.
      const gate = new Promise<void>((resolve) => (release = resolve));
      const bulkWrite = s.bulkWrite.bind(s);
      s.bulkWrite = async (...args) => {
        await gate;
        return bulkWrite(...args);
      };
    }
    const a = side(s, linkA, { limits });
    const closed = new Promise<void>((resolve) => linkA.onClose(() => resolve()));
    cleanups.push(async () => {
      release();
      await a.rep.close();
      linkA.close();
    });
    return { a, raw, closed, release };
  }

  const rejections = (a: Side) => a.events.filter((e) => e.event === 'peer-rejected');

  it('queues at most maxPendingRequests requests', async () => {
    const { a, raw, closed } = rejectedSetup({ maxPendingRequests: 8 }, true);
    await a.rep.ready;
    for (let i = 0; i < 10; i++)
      raw.sendJson({
        id: `raw|${i}`,
        method: 'masterWrite',
        params: [[{ newDocumentState: { id: `q${i}`, _deleted: false } }]],
      });
    await closed;
    expect(rejections(a)).toEqual([
      { event: 'peer-rejected', peerId: 'a', reason: 'more than 8 requests waiting', limit: 'maxPendingRequests' },
    ]);
  });

  it('takes at most maxRowsPerRequest rows in one masterWrite', async () => {
    const { a, raw, closed } = rejectedSetup({ maxRowsPerRequest: 3 });
    await a.rep.ready;
    expect(
      (
        await raw.request('masterWrite', [
          [1, 2, 3].map((i) => ({ newDocumentState: { id: `ok${i}`, _deleted: false } })),
        ])
      ).error,
    ).toBeUndefined();
    raw.sendJson({
      id: 'raw|big',
      method: 'masterWrite',
      params: [[1, 2, 3, 4].map((i) => ({ newDocumentState: { id: `r${i}`, _deleted: false } }))],
    });
    await closed;
    expect(rejections(a)).toMatchObject([{ limit: 'maxRowsPerRequest' }]);
    expect((await a.store.get(['r1'])).size).toBe(0);
  });

  it('tolerates maxRejectedInputs refused frames, and not one more', async () => {
    const { a, raw, closed } = rejectedSetup({ maxRejectedInputs: 5 });
    await a.rep.ready;
    for (let i = 0; i < 5; i++) raw.send('not json');
    // A request answered after the five refusals proves they were all processed and the link is still open.
    expect((await raw.request('masterChangesSince', [null, 1])).error).toBeUndefined();
    expect(rejections(a)).toEqual([]);
    raw.send('not json');
    await closed;
    expect(rejections(a)).toMatchObject([{ limit: 'maxRejectedInputs' }]);
  });

  it('keeps at most maxMessageChars in reassembly', async () => {
    const { a, raw, closed } = rejectedSetup({ maxMessageChars: 1000 });
    await a.rep.ready;
    for (let index = 0; index < 3; index++)
      raw.sendJson({ chunk: { id: 'big', index, total: 3, data: 'x'.repeat(400) } });
    await closed;
    expect(rejections(a)).toMatchObject([{ limit: 'maxMessageChars' }]);
  });
});

// Stock RxDB 17 in a browser page: memory storage, one `docs` collection, WebRTC replication through the
// simple-peer connection handler with the browser's own RTCPeerConnection and WebSocket. Bundled by esbuild at
// test time (test/system/browser/bundle.ts) from the project's devDependencies. The test drives it through
// `window.rxdbPeer` and receives events through `window.reportEvent` (a Playwright binding).
import { createRxDatabase, RXDB_VERSION, randomToken } from 'rxdb';
import { getRxStorageMemory } from 'rxdb/plugins/storage-memory';
import { replicateWebRTC, getConnectionHandlerSimplePeer } from 'rxdb/plugins/replication-webrtc';

const schema = {
  version: 0,
  primaryKey: 'id',
  type: 'object',
  properties: { id: { type: 'string', maxLength: 255 }, title: { type: 'string' }, n: { type: 'number' } },
  required: ['id'],
  additionalProperties: true,
};

// RxDB's simple-peer handler requires process.nextTick (RxDB error RC7); browsers have none. RxDB's docs polyfill it.
globalThis.process ??= { env: {} };
globalThis.process.nextTick ??= (fn, ...args) => queueMicrotask(() => fn(...args));

const report = (event) => window.reportEvent?.(JSON.stringify(event));
let collection;

window.rxdbPeer = {
  /** Creates the database, seeds it, starts replication; resolves with its storage token. */
  async start({ signal, topic, seed = 0, prefix = 'R' }) {
    const db = await createRxDatabase({
      name: `browser${randomToken(8)}`,
      storage: getRxStorageMemory(),
      multiInstance: false,
    });
    await db.addCollections({ docs: { schema } });
    collection = db.docs;
    const docs = [];
    for (let i = 1; i <= seed; i++)
      docs.push({ id: `${prefix}-${String(i).padStart(4, '0')}`, title: `from the browser ${i}`, n: i });
    if (docs.length) await collection.bulkInsert(docs);
    collection.$.subscribe(() => report({ event: 'change' }));
    const pool = await replicateWebRTC({
      collection,
      topic,
      connectionHandlerCreator: getConnectionHandlerSimplePeer({
        signalingServerUrl: signal,
        config: { iceServers: [] },
      }),
      pull: {},
      push: {},
    });
    pool.error$.subscribe((err) =>
      report({
        event: 'error',
        code: err?.code,
        message: String(err?.message ?? err),
        parameters: JSON.stringify(err?.parameters ?? {}).slice(0, 500),
      }),
    );
    pool.peerStates$.subscribe((states) => report({ event: 'peers', count: states.size }));
    return { storageToken: await db.storageToken, rxdbVersion: RXDB_VERSION, userAgent: navigator.userAgent };
  },
  async put(doc) {
    await collection.upsert(doc);
  },
  /** Live documents sorted by id, user fields only. */
  async dump() {
    const docs = await collection.find().exec();
    return docs.map((d) => d.toMutableJSON(false)).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  },
};
report({ event: 'loaded' });

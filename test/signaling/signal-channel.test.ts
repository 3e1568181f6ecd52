import { createSignalingClient } from '../../src/signaling/client.js';
import { createDefaultSignaling } from '../../src/signaling/embedded.js';
import { startSignalServer } from '../../src/signaling/server.js';
import { MemorySignalHub } from '../../src/transport/memory-signal.js';
import { freePort } from '../helpers/e2e.js';
import { runSignalChannelContract } from './signal-channel-contract.js';

const TOPIC = 'contract-topic';

runSignalChannelContract('WebSocket client on a p2psync server', async () => {
  const server = await startSignalServer({ port: 0, host: '127.0.0.1' });
  const url = `ws://127.0.0.1:${server.port}`;
  const a = createSignalingClient({ url, topic: TOPIC });
  const b = createSignalingClient({ url, topic: TOPIC });
  return {
    a,
    b,
    async close() {
      await Promise.all([a.close(), b.close()]);
      await server.close({ timeoutMs: 500 });
    },
  };
});

runSignalChannelContract('in-memory hub', async () => {
  const hub = new MemorySignalHub();
  const a = hub.createClient();
  const b = hub.createClient();
  a.connect();
  b.connect();
  return { a, b, close: async () => {} };
});

runSignalChannelContract('embedded default (one side hosts the server)', async () => {
  const port = await freePort();
  const a = createDefaultSignaling({ topic: TOPIC, port });
  await a.waitConnected(10_000);
  const b = createDefaultSignaling({ topic: TOPIC, port });
  return {
    a,
    b,
    async close() {
      await Promise.all([b.close(), a.close()]);
    },
  };
});

import { MemoryStore } from '../../src/store/memory-store.js';
import { runStoreContract } from './contract.js';

runStoreContract('memory', () => {
  const opened: MemoryStore[] = [];
  return {
    persistent: false,
    async open(options = {}) {
      const s = new MemoryStore(options);
      opened.push(s);
      return s;
    },
    async cleanup() {
      for (const s of opened.splice(0)) await s.close();
    },
  };
});

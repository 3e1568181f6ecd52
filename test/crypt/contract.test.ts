import { DocCipher } from '../../src/crypt/doc-cipher.js';
import { EncryptedStore } from '../../src/crypt/encrypted-store.js';
import { newDataKey, ValueCipher } from '../../src/crypt/value.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { runStoreContract } from '../store/contract.js';
import { CONTRACT_FIELDS, encryptedFileHarness } from './harness.js';

runStoreContract('encrypted memory', () => {
  const opened: EncryptedStore[] = [];
  const key = newDataKey();
  return {
    persistent: false,
    async open(options = {}) {
      const s = new EncryptedStore(new MemoryStore(options), new DocCipher('id', CONTRACT_FIELDS, new ValueCipher([key], key)));
      opened.push(s);
      return s;
    },
    async cleanup() {
      for (const s of opened.splice(0)) await s.close();
    },
  };
});
runStoreContract('encrypted JSON file', () => encryptedFileHarness('docs.json'));
runStoreContract('encrypted NDJSON file', () => encryptedFileHarness('docs.ndjson'));

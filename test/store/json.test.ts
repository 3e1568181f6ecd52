import { runStoreContract } from './contract.js';
import { fileHarness } from './harness.js';

runStoreContract('JSON file', () => fileHarness('docs.json'));
runStoreContract('JSON file with a collection', () => fileHarness('db.json', { collection: 'docs' }));

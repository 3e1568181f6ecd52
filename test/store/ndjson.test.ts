import { runStoreContract } from './contract.js';
import { fileHarness } from './harness.js';

runStoreContract('NDJSON file', () => fileHarness('docs.ndjson'));

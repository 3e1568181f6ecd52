import { randomToken } from '../core/random.js';
import { IndexedStore } from './indexed-store.js';

export interface MemoryStoreOptions {
  primaryKey?: string;
  storageToken?: string;
}

/** A store that lives in memory only: for tests and for embedding. */
export class MemoryStore extends IndexedStore {
  readonly storageToken: string;

  constructor(options: MemoryStoreOptions = {}) {
    super(options.primaryKey ?? 'id');
    this.storageToken = options.storageToken ?? randomToken(10);
  }
}

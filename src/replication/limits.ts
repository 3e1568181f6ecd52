/**
 * Numbers that bound what one peer link may cost, with the reason for each. Every instance can override them
 * (`ReplicationOptions.limits`), mostly so tests can provoke the edge cases with small values.
 */
export interface ReplicationLimits {
  /**
   * Pause sending while the link reports more than this many bytes queued (`bufferedAmount`). About 10 ms of a
   * loopback data channel (~100 MB/s): enough to keep the pipe full, small enough that a slow peer costs little.
   */
  highWaterBytes: number;
  /**
   * Outbound pressure (own queue + link buffer, in characters/bytes) above which master change-stream events are
   * dropped and replaced by one `RESYNC` once the link drained. A fork that does not read then costs a bounded
   * amount of memory; it re-pulls what it missed from its checkpoint.
   */
  streamDropBytes: number;
  /** `masterWrite` requests a fork keeps in flight per peer (RxDB's upstream keeps about 4). */
  pushWindow: number;
  /**
   * Requests from one peer waiting to be served. A peer that queues more is dropped (`peer-rejected`): RxDB forks
   * keep a few requests in flight and p2psync forks at most `pushWindow` plus a few pages ahead.
   */
  maxPendingRequests: number;
  /** Characters of requests from one peer waiting to be served (same policy). */
  maxPendingRequestChars: number;
  /** Largest accepted `total` of a chunked message; a larger one drops the peer. */
  maxChunkTotal: number;
  /** Incomplete chunk sets kept per link; the oldest is dropped beyond this (RxDB senders never interleave). */
  maxIncompleteChunkSets: number;
  /**
   * Largest reassembled message, and the budget of all incomplete chunk sets of a link together, in characters;
   * a peer exceeding it is dropped. This also bounds the largest document that can replicate.
   */
  maxMessageChars: number;
  /** Rows in one `masterWrite`; more drops the peer (p2psync forks size push batches to fit one frame). */
  maxRowsPerRequest: number;
  /**
   * Refused frames, chunks, requests and documents tolerated on one link; one more drops the peer. A peer that
   * keeps sending garbage costs parsing time and native buffers that only closing the link releases.
   */
  maxRejectedInputs: number;
  /** Largest `batchSize` a master serves in one `masterChangesSince` page. */
  maxBatchSize: number;
  /** Deepest nesting accepted inside a document (deeper ones would risk stack overflows in comparisons). */
  maxDocDepth: number;
  /** Longest primary key accepted, in characters (RxDB apps usually declare maxLength 255 or less). */
  maxKeyLength: number;
  /** Fallback re-check of the link buffer when no drain notification comes (thresholds of links differ). */
  drainPollMs: number;
  /**
   * A master that served writes waits this long without requests before it sends `RESYNC`, so that a fork that sends
   * no in-sync marker (RxDB) pulls once more and the master learns from the short page that the pair is in sync.
   * p2psync forks send the marker right away, so this only costs RxDB pairs a delay before `--once` can finish.
   */
  resyncPromptMs: number;
}

export const DEFAULT_LIMITS: Readonly<ReplicationLimits> = Object.freeze({
  highWaterBytes: 1024 * 1024,
  streamDropBytes: 8 * 1024 * 1024,
  pushWindow: 4,
  maxPendingRequests: 256,
  maxPendingRequestChars: 32 * 1024 * 1024,
  // 2,048 RxDB chunks of 16,384 characters: the 32 Mi characters below.
  maxChunkTotal: 2048,
  maxIncompleteChunkSets: 4,
  maxMessageChars: 32 * 1024 * 1024,
  maxRowsPerRequest: 10_000,
  maxRejectedInputs: 1000,
  maxBatchSize: 10_000,
  maxDocDepth: 100,
  maxKeyLength: 2048,
  drainPollMs: 20,
  resyncPromptMs: 1000,
});

/** RxDB's chunk size and the largest message it sends unchunked (docs/PROTOCOL.md §2.1). */
export const RXDB_CHUNK_CHARS = 16_384;

/**
 * Default largest batch for p2psync forks (RxDB's default is 20). Below it, forks size pages and push batches to
 * fit one unchunked frame (`BatchSizer`: 85 % of the link's 256 KiB message limit, so the full 1,000 documents of
 * ~200 bytes). Chunked messages cost about twice the CPU: a fixed batch too large for one frame measured slower
 * (~94k vs ~150k docs/s in process).
 */
export const DEFAULT_BATCH_SIZE = 1000;

/** RxDB's request timeout (docs/PROTOCOL.md §1.7). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 20_000;

/** RxDB's `retryTime`: how long a fork waits after a failed request before it tries again. */
export const DEFAULT_RETRY_DELAY_MS = 5_000;

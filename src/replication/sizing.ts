/** Share of a frame a batch aims to fill, leaving room for documents larger than the average. */
const FILL = 0.85;
/** Message envelope around the documents (ids, checkpoint, brackets), not counted per document. */
const ENVELOPE_BYTES = 200;
/** First batch before any size is known: small enough to fit a frame unless documents are large. */
const FIRST_BATCH = 100;

/**
 * Picks batch sizes so that a batch's message usually fits in one frame: a chunked message costs about twice the
 * CPU (the chunk envelope escapes the text again, and the receiver parses twice). The configured batch size is
 * the maximum; the size follows a moving average of UTF-8 bytes per document observed on the link.
 */
export class BatchSizer {
  private perDoc = 0;

  constructor(
    private readonly max: number,
    private readonly frameBytes: number,
  ) {}

  get size(): number {
    if (this.perDoc === 0) return Math.min(this.max, FIRST_BATCH);
    return Math.max(1, Math.min(this.max, Math.floor((this.frameBytes * FILL) / this.perDoc)));
  }

  /** A message of `bytes` UTF-8 bytes carried `docs` documents. */
  observe(bytes: number, docs: number): void {
    if (docs <= 0) return;
    const x = Math.max(1, (bytes - ENVELOPE_BYTES) / docs);
    this.perDoc = this.perDoc === 0 ? x : 0.7 * this.perDoc + 0.3 * x;
  }
}

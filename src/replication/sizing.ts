/** Share of a frame a batch aims to fill, leaving room for documents larger than the average. */
const FILL = 0.85;
/** Message envelope around the documents (ids, checkpoint, brackets), not counted per document. */
const ENVELOPE_CHARS = 200;
/** First batch before any size is known: small enough to fit a frame unless documents are large. */
const FIRST_BATCH = 100;

/**
 * Picks batch sizes so that a batch's message usually fits in one frame: a chunked message costs about twice the
 * CPU (the chunk envelope escapes the text again, and the receiver parses twice). The configured batch size is
 * the maximum; the size follows a moving average of characters per document observed on the link.
 */
export class BatchSizer {
  private perDoc = 0;

  constructor(
    private readonly max: number,
    private readonly frameChars: number,
  ) {}

  get size(): number {
    if (this.perDoc === 0) return Math.min(this.max, FIRST_BATCH);
    return Math.max(1, Math.min(this.max, Math.floor((this.frameChars * FILL) / this.perDoc)));
  }

  /** A message of `chars` characters carried `docs` documents. */
  observe(chars: number, docs: number): void {
    if (docs <= 0) return;
    const x = Math.max(1, (chars - ENVELOPE_CHARS) / docs);
    this.perDoc = this.perDoc === 0 ? x : 0.7 * this.perDoc + 0.3 * x;
  }
}

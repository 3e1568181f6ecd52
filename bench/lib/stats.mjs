// Small statistics helpers. Medians rather than means: WebRTC connect times are bimodal (about 20 ms or about
// 1 s when the DTLS handshake waits for a retransmit), so a mean would mostly measure luck.

/** Median of the finite numbers in `values`, or undefined when there are none. */
export function median(values) {
  return percentile(values, 50);
}

/** Nearest-rank percentile (p in 0..100) of the finite numbers in `values`. */
export function percentile(values, p) {
  const xs = values.filter((v) => typeof v === 'number' && Number.isFinite(v)).sort((a, b) => a - b);
  if (xs.length === 0) return undefined;
  const rank = Math.max(1, Math.ceil((p / 100) * xs.length));
  return xs[Math.min(rank, xs.length) - 1];
}

export function max(values) {
  const xs = values.filter((v) => typeof v === 'number' && Number.isFinite(v));
  return xs.length ? Math.max(...xs) : undefined;
}

/** Rounds to `digits` decimals, passing undefined through. */
export function round(v, digits = 0) {
  if (typeof v !== 'number' || !Number.isFinite(v)) return undefined;
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

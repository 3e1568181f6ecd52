// Number formatting for the Markdown tables.

/** Bytes as whole MiB. */
export const mb = (bytes) => (typeof bytes === 'number' ? String(Math.round(bytes / 2 ** 20)) : '');
/** Milliseconds as seconds, 2 decimals below 10 s. */
export const secs = (ms) =>
  typeof ms === 'number' ? (ms < 10_000 ? (ms / 1000).toFixed(2) : (ms / 1000).toFixed(1)) : '';
/** A whole number with thousands separators. */
export const int = (n) => (typeof n === 'number' ? Math.round(n).toLocaleString('en-US') : '');
/** Milliseconds, one decimal below 10. */
export const ms = (v) => (typeof v === 'number' ? (v < 10 ? v.toFixed(1) : String(Math.round(v))) : '');

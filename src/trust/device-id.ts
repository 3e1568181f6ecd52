import { P2PSyncError } from '../core/errors.js';

/*
 * A device id is the SHA-256 fingerprint of a peer's DTLS certificate, written as in SDP and as
 * `openssl x509 -noout -fingerprint -sha256` prints it: 32 upper-case hex bytes joined by colons. Ids are also
 * accepted as 64 hex digits without colons, in either case.
 */

const COLON_FORM = /^[0-9A-F]{2}(?::[0-9A-F]{2}){31}$/;
const BARE_FORM = /^[0-9A-F]{64}$/;

/** The canonical form of a device id, or `undefined` if `text` is not one. */
export function normalizeDeviceId(text: string): string | undefined {
  let t = text.trim().toUpperCase();
  if (t.startsWith('SHA-256 ')) t = t.slice('SHA-256 '.length).trim();
  if (COLON_FORM.test(t)) return t;
  if (BARE_FORM.test(t)) return t.match(/../g)!.join(':');
  return undefined;
}

/** A certificate fingerprint as node-datachannel reports it (`{value, algorithm}`), as a device id if SHA-256. */
export function deviceIdOfFingerprint(fp: { value: string; algorithm: string } | undefined): string | undefined {
  if (!fp || fp.algorithm.toLowerCase() !== 'sha-256') return undefined;
  return normalizeDeviceId(fp.value);
}

/**
 * Parses an allowlist file: one device id per line; `#` starts a comment; blank lines are skipped. Throws
 * E_ALLOWLIST (exit 2) with the line number for a malformed id, and for a file that lists no id at all.
 */
export function parseAllowlist(text: string, file: string): ReadonlySet<string> {
  const ids = new Set<string>();
  const lines = text.split(/\r?\n/);
  lines.forEach((line, i) => {
    const content = line.replace(/#.*$/, '').trim();
    if (content === '') return;
    const id = normalizeDeviceId(content);
    if (!id) {
      const shown = content.length > 40 ? content.slice(0, 40) + '...' : content;
      throw new P2PSyncError(
        'E_ALLOWLIST',
        `${file}:${i + 1}: "${shown}" is not a device id (expected a SHA-256 fingerprint, 32 hex bytes)`,
        { file, line: i + 1 },
      );
    }
    ids.add(id);
  });
  if (ids.size === 0) throw new P2PSyncError('E_ALLOWLIST', `${file} lists no device id`, { file });
  return ids;
}

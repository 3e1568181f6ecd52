import { describe, expect, it } from 'vitest';
import { isMaster, sha256hex } from '../../src/replication/master-rule.js';

describe('master rule (docs/PROTOCOL.md §2.3)', () => {
  it('matches the spec test vectors', () => {
    expect(sha256hex('aaaaaaaaaa|bbbbbbbbbb').startsWith('fe86a8bf')).toBe(true);
    expect(sha256hex('bbbbbbbbbb|aaaaaaaaaa').startsWith('f42dec4b')).toBe(true);
    expect(isMaster('aaaaaaaaaa', 'bbbbbbbbbb')).toBe(true);
    expect(isMaster('bbbbbbbbbb', 'aaaaaaaaaa')).toBe(false);

    expect(sha256hex('pkynpddqos|qcnluynkov').startsWith('bcca7b51')).toBe(true);
    expect(sha256hex('qcnluynkov|pkynpddqos').startsWith('de559d86')).toBe(true);
    expect(isMaster('pkynpddqos', 'qcnluynkov')).toBe(false);
    expect(isMaster('qcnluynkov', 'pkynpddqos')).toBe(true);
  });

  it('gives exactly one master for distinct tokens and none for equal ones', () => {
    const tokens = ['a', 'b', 'abc', 'zzzzzzzzzz', 'ümlaut', '😀', 'x|y', 'x', ''];
    for (const a of tokens) {
      for (const b of tokens) {
        if (a === b) expect(isMaster(a, b)).toBe(false);
        else expect(isMaster(a, b)).not.toBe(isMaster(b, a));
      }
    }
  });

  it('hashes UTF-8 as lowercase hex', () => {
    expect(sha256hex('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(sha256hex('é')).toMatch(/^[0-9a-f]{64}$/);
  });
});

import { randomInt } from 'node:crypto';

const LETTERS = 'abcdefghijklmnopqrstuvwxyz';

/** `length` random lowercase letters from a CSPRNG (storage tokens, connection ids, chunk ids). */
export function randomToken(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += LETTERS[randomInt(26)];
  return out;
}

import { readFile } from 'node:fs/promises';
import { P2PSyncError } from '../core/errors.js';

/** Where the user's key comes from: a file (`--key-file`), or the text of an environment variable. */
export type KeySource = { file: string } | { text: string; name: string };

/**
 * The key's bytes. A key file is used as it is, except for one final line break (`echo secret > key` and
 * `printf secret > key` give the same key). E_KEY_FILE if the file is missing, unreadable or empty.
 */
export async function readSecret(source: KeySource): Promise<Buffer> {
  if ('text' in source) {
    if (source.text === '') throw new P2PSyncError('E_KEY_FILE', `${source.name} is empty`, { env: source.name });
    return Buffer.from(source.text, 'utf8');
  }
  let bytes: Buffer;
  try {
    bytes = await readFile(source.file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'does not exist'
        : code === 'EISDIR'
          ? 'is a directory'
          : `cannot be read (${code ?? (err as Error).message})`;
    throw new P2PSyncError('E_KEY_FILE', `key file ${source.file} ${why}`, { file: source.file }, { cause: err });
  }
  let end = bytes.length;
  if (bytes[end - 1] === 0x0a) {
    end--;
    if (bytes[end - 1] === 0x0d) end--;
  }
  if (end === 0) throw new P2PSyncError('E_KEY_FILE', `key file ${source.file} is empty`, { file: source.file });
  return bytes.subarray(0, end);
}

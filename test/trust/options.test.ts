import { mkdtemp, readFile, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { P2PSyncError } from '../../src/core/errors.js';
import { normalizeDeviceId, parseAllowlist } from '../../src/trust/device-id.js';
import { loadIdentity, loadOrCreateIdentity, loadTrustOptions, trustForTopic } from '../../src/trust/index.js';

const ID = 'AB:'.repeat(31) + 'CD';

let dir: string;
beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'p2psync-trust-'))));
afterEach(async () => rm(dir, { recursive: true, force: true }));

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return err instanceof P2PSyncError ? err.code : `not a P2PSyncError: ${String(err)}`;
  }
  return 'resolved';
}

describe('device ids and allowlists', () => {
  it('normalises the colon and bare hex forms, in either case', () => {
    expect(normalizeDeviceId(ID.toLowerCase())).toBe(ID);
    expect(normalizeDeviceId(ID.replace(/:/g, ''))).toBe(ID);
    expect(normalizeDeviceId(`sha-256 ${ID}`)).toBe(ID);
    for (const bad of ['', 'AB:CD', ID + ':EF', ID.replace('AB', 'GZ'), ID.replace(/:/g, '-'), 'AB'.repeat(31)]) {
      expect(normalizeDeviceId(bad)).toBeUndefined();
    }
  });

  it('parses ids with comments and blank lines', () => {
    const other = '01'.repeat(32);
    const ids = parseAllowlist(`# servers\n${ID}  # db-1\n\n  ${other}\r\n`, 'allow.txt');
    expect([...ids]).toEqual([ID, normalizeDeviceId(other)]);
  });

  it('names the line of a malformed id, and refuses a file without ids', () => {
    expect(() => parseAllowlist(`${ID}\nnot-an-id\n`, 'allow.txt')).toThrow(
      /allow\.txt:2: "not-an-id" is not a device id/,
    );
    expect(() => parseAllowlist('# nothing\n\n', 'allow.txt')).toThrow(/lists no device id/);
  });
});

describe('loadTrustOptions', () => {
  it('reads a secret file (one trailing newline ignored) and an allowlist', async () => {
    await writeFile(join(dir, 's'), 'hunter2 hunter2\n');
    await writeFile(join(dir, 'a'), `${ID}\n`);
    const t = await loadTrustOptions({ secretFile: join(dir, 's'), allowPeersFile: join(dir, 'a') });
    expect(Buffer.from(t.secret!).toString()).toBe('hunter2 hunter2');
    expect([...t.allowPeers!]).toEqual([ID]);
    expect(await loadTrustOptions({})).toEqual({ secret: undefined, allowPeers: undefined });
    expect(Buffer.from((await loadTrustOptions({ secret: 'from-env' })).secret!).toString()).toBe('from-env');
  });

  it('E_SECRET for a missing, empty, unreadable or doubly given secret', async () => {
    await writeFile(join(dir, 'empty'), '\n');
    await writeFile(join(dir, 'blank'), '  \n');
    await writeFile(join(dir, 'locked'), 'x');
    await chmod(join(dir, 'locked'), 0);
    expect(await code(loadTrustOptions({ secretFile: join(dir, 'missing') }))).toBe('E_SECRET');
    expect(await code(loadTrustOptions({ secretFile: join(dir, 'empty') }))).toBe('E_SECRET');
    expect(await code(loadTrustOptions({ secretFile: join(dir, 'blank') }))).toBe('E_SECRET');
    expect(await code(loadTrustOptions({ secretFile: dir }))).toBe('E_SECRET'); // a directory
    if (process.getuid?.() !== 0)
      expect(await code(loadTrustOptions({ secretFile: join(dir, 'locked') }))).toBe('E_SECRET');
    expect(await code(loadTrustOptions({ secret: '' }))).toBe('E_SECRET');
    expect(await code(loadTrustOptions({ secret: 'x', secretFile: join(dir, 'locked') }))).toBe('E_SECRET');
  });

  it('E_ALLOWLIST for a missing, empty or malformed allowlist', async () => {
    await writeFile(join(dir, 'empty'), '');
    await writeFile(join(dir, 'bad'), 'AB:CD\n');
    for (const f of ['missing', 'empty', 'bad'])
      expect(await code(loadTrustOptions({ allowPeersFile: join(dir, f) }))).toBe('E_ALLOWLIST');
  });
});

describe('trustForTopic', () => {
  it('without options: the topic is the room, the channel is untouched, no gate', () => {
    const t = trustForTopic({}, 'topic-one', () => undefined);
    expect(t.room).toBe('topic-one');
    expect(t.gate).toBeUndefined();
    const channel = { peerId: undefined } as never;
    expect(t.signal(channel)).toBe(channel);
  });

  it('with a secret: a hashed room and a gate; with an allowlist only: the plain topic and a gate', () => {
    const s = trustForTopic({ secret: Buffer.from('k') }, 'topic-one', () => undefined);
    expect(s.room).toMatch(/^p2ps-/);
    expect(s.gate).toBeDefined();
    const a = trustForTopic({ allowPeers: new Set([ID]) }, 'topic-one', () => undefined);
    expect(a.room).toBe('topic-one');
    expect(a.gate).toBeDefined();
  });
});

describe('device identity', () => {
  it('is created once (mode 0600) and then loaded unchanged; its id is the certificate fingerprint', async () => {
    const file = join(dir, 'notes.json.p2psync.identity.pem');
    const first = await loadOrCreateIdentity(file);
    expect(first.created).toBe(true);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const again = await loadOrCreateIdentity(file);
    expect(again).toEqual({ ...first, created: false });
    const pem = await readFile(file, 'utf8');
    expect(first.deviceId).toBe(new X509Certificate(pem).fingerprint256);
    expect(pem).toContain('BEGIN PRIVATE KEY');
  });

  it('two concurrent creators agree on one identity', async () => {
    const file = join(dir, 'id.pem');
    const [a, b] = await Promise.all([loadOrCreateIdentity(file), loadOrCreateIdentity(file)]);
    expect(a.deviceId).toBe(b.deviceId);
    expect([a.created, b.created].filter(Boolean)).toHaveLength(1);
  });

  it('E_IDENTITY for a damaged file, which is left untouched', async () => {
    const file = join(dir, 'id.pem');
    await writeFile(file, 'garbage');
    expect(await code(loadOrCreateIdentity(file))).toBe('E_IDENTITY');
    expect(await readFile(file, 'utf8')).toBe('garbage');
    // a certificate with someone else's key
    const one = await loadOrCreateIdentity(join(dir, 'one.pem'));
    const two = await loadOrCreateIdentity(join(dir, 'two.pem'));
    const cert = (await readFile(one.pemFile, 'utf8')).split('-----BEGIN PRIVATE KEY-----')[0]!;
    const key =
      '-----BEGIN PRIVATE KEY-----' + (await readFile(two.pemFile, 'utf8')).split('-----BEGIN PRIVATE KEY-----')[1]!;
    await writeFile(file, cert + key);
    expect(await code(loadIdentity(file))).toBe('E_IDENTITY');
  });
});

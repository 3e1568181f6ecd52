import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readFile, readlink, readdir, symlink, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import type { DocState } from '../../src/core/types.js';
import { openStore } from '../../src/store/open.js';
import { firstInvalidUtf8 } from '../../src/store/utf8.js';
import { runCli } from '../helpers/spawn.js';
import { StoreFixture } from './harness.js';

/** Store inputs as a user would try them (issue 11, item 6). */
describe('store inputs', () => {
  let fx: StoreFixture;
  beforeEach(async () => {
    fx = await StoreFixture.create();
  });
  afterEach(async () => {
    await fx.cleanup();
  });

  describe('bytes that are not UTF-8', () => {
    it('finds the first invalid byte of a sequence', () => {
      const at = (hex: string): number => firstInvalidUtf8(Buffer.from(hex.replace(/ /g, ''), 'hex'));
      expect(at('61 c3a9 e282ac f09f9880')).toBe(-1); // a é € 😀
      expect(at('61 ff')).toBe(1);
      expect(at('61 c0 af')).toBe(1); // overlong '/'
      expect(at('61 62 eda080')).toBe(2); // a UTF-16 surrogate
      expect(at('e282')).toBe(0); // cut short
      expect(at('f4 90 80 80')).toBe(0); // beyond U+10FFFF
      expect(at('c3a9 80')).toBe(2); // a stray continuation byte
    });

    for (const file of ['a.json', 'a.ndjson']) {
      it(`refuses ${file} with E_PARSE naming the byte offset and line, and never rewrites it`, async () => {
        const path = fx.file(file);
        const lines = ['{"id":"a","t":"caf\u00e9"}', '{"id":"b","t":"x\u0000y"}'];
        const head = Buffer.from(
          file.endsWith('.json')
            ? `[\n${lines[0]},\n${lines[1]!.slice(0, 15)}`
            : `${lines[0]}\n${lines[1]!.slice(0, 15)}`,
        );
        const bytes = Buffer.concat([
          head,
          Buffer.from([0xe9]),
          Buffer.from(file.endsWith('.json') ? '"}\n]\n' : '"}\n'),
        ]);
        await writeFile(path, bytes);
        const line = file.endsWith('.json') ? 3 : 2;
        await expect(openStore({ path, watch: false })).rejects.toMatchObject({
          code: 'E_PARSE',
          message: new RegExp(`a\\.n?d?json:${line}:16: invalid UTF-8 \\(byte 0xe9 at byte offset ${head.length}\\)`),
          details: { file: path, line, column: 16, offset: head.length },
        });
        expect(await readFile(path)).toEqual(bytes);
        expect(existsSync(path + '.p2psync')).toBe(false);
      });
    }

    it('is noticed in an outside edit while the store is open: an error event, and the file is left alone', async () => {
      const path = fx.file('a.ndjson');
      const events: Array<{ event: string; code?: string }> = [];
      const s = await fx.open({ path, watch: false, emit: (e) => events.push(e as never) });
      await s.bulkWrite([{ document: { id: 'a', _deleted: false }, expected: null }], { kind: 'local' });
      await s.flush();
      const bytes = Buffer.concat([
        Buffer.from('{"id":"a"}\n{"id":"b","t":"'),
        Buffer.from([0xc3, 0x28]),
        Buffer.from('"}\n'),
      ]);
      await writeFile(path, bytes);
      // The next save looks at the file first (never writing over an edit it has not seen) and finds it broken.
      await s.bulkWrite([{ document: { id: 'c', _deleted: false }, expected: null }], { kind: 'local' });
      await expect(s.flush()).rejects.toMatchObject({ code: 'E_PARSE', details: { line: 2, column: 16, offset: 26 } });
      expect(events).toContainEqual(expect.objectContaining({ event: 'error', code: 'E_PARSE' }));
      expect(await readFile(path)).toEqual(bytes);
    });

    it('`put` on such a file exits 2 and leaves it byte for byte as it was', async () => {
      const path = fx.file('a.json');
      const bytes = Buffer.concat([Buffer.from('[{"id":"a","t":"'), Buffer.from([0xff]), Buffer.from('"}]\n')]);
      await writeFile(path, bytes);
      const r = await runCli(['put', '--store', path, '--json', '{"id":"b"}']);
      expect(r.code).toBe(2);
      expect(r.stdout).toMatch(/"code":"E_PARSE".*byte offset 16/);
      expect(await readFile(path)).toEqual(bytes);
    });
  });

  describe('a store path that is a symlink', () => {
    it('is written through to its target, atomically beside it; the link stays a link', async () => {
      await mkdir(fx.file('real'));
      const target = fx.file('real/notes.json');
      const link = fx.file('notes.json');
      await writeFile(target, '[{"id":"a"}]\n');
      await symlink(target, link);
      const s = await fx.open({ path: link, watch: false });
      await s.bulkWrite([{ document: { id: 'b', _deleted: false }, expected: null }], { kind: 'local' });
      await s.flush();
      expect((await lstat(link)).isSymbolicLink()).toBe(true);
      expect(await readlink(link)).toBe(target);
      expect(JSON.parse(await readFile(target, 'utf8'))).toEqual([{ id: 'a' }, { id: 'b' }]);
      // No temp file is left in either directory; the sidecar stays beside the name the user gave.
      expect((await readdir(fx.file('real'))).sort()).toEqual(['notes.json']);
      expect(existsSync(link + '.p2psync')).toBe(true);
      await s.close();
      // Its own write is not taken for an outside edit at the next start.
      const again = await fx.open({ path: link, watch: false });
      expect((await again.all()).map((d) => d.id)).toEqual(['a', 'b']);
      expect(again.stats.outsideEdits).toBe(0);
    });

    it('with a missing file behind a relative link: refused (E_BAD_OPTION), nothing created', async () => {
      const link = fx.file('notes.json');
      await symlink('gone.json', link);
      await expect(openStore({ path: link, watch: false })).rejects.toMatchObject({
        code: 'E_BAD_OPTION',
        message: /symlink to a file that does not exist/,
      });
      expect(existsSync(fx.file('gone.json'))).toBe(false);
      expect(existsSync(link + '.p2psync')).toBe(false);
    });

    const notFiles: Array<[string, () => Promise<string>, RegExp]> = [
      ['a symlink to /dev/null', async () => '/dev/null', /is a device \(through a symlink to \/dev\/null\)/],
      ['a directory', async () => (await mkdir(fx.file('d.json')), fx.file('d.json')), /is a directory/],
      ['a FIFO', async () => (execFileSync('mkfifo', [fx.file('f.ndjson')]), fx.file('f.ndjson')), /is a FIFO/],
    ];
    for (const [name, make, message] of notFiles) {
      it(`${name} is refused with E_BAD_OPTION and nothing is written`, async () => {
        let path = await make();
        if (path === '/dev/null') {
          path = fx.file('null.json');
          await symlink('/dev/null', path);
        }
        await expect(openStore({ path, watch: false })).rejects.toMatchObject({ code: 'E_BAD_OPTION', message });
        expect(existsSync(path + '.p2psync')).toBe(false);
        expect((await lstat(path)).isFile()).toBe(false);
      });
    }

    it('`put` into a symlink to /dev/null exits 2', async () => {
      const path = fx.file('null.ndjson');
      await symlink('/dev/null', path);
      const r = await runCli(['put', '--store', path, '{"id":"b"}']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/is a device .*\[E_BAD_OPTION\]/);
      expect((await lstat(path)).isSymbolicLink()).toBe(true);
    });
  });

  describe('reserved fields', () => {
    const files: Array<[string, string, number, string]> = [
      ['a.json', '[\n  {"id": "a"},\n  {"id": "b", "t": 1, "_rev": "1-x"}\n]\n', 3, '_rev'],
      ['a.ndjson', '{"id":"a"}\n{"id":"b","_deleted":true}\n', 2, '_deleted'],
      ['b.ndjson', '{"id":"b","_meta":{"lwt":1}}\n', 1, '_meta'],
      ['c.ndjson', '{"id":"b","x":{"_rev":"nested is fine"},"_attachments":{}}\n', 1, '_attachments'],
    ];
    for (const [file, content, line, field] of files) {
      it(`in ${file} (${field}) are refused with E_RESERVED_FIELD naming the id and field; the file is untouched`, async () => {
        const path = fx.file(file);
        await writeFile(path, content);
        await expect(openStore({ path, watch: false })).rejects.toMatchObject({
          code: 'E_RESERVED_FIELD',
          message: new RegExp(`:${line}:\\d+: document "b" carries the reserved field "${field}"`),
          details: { file: path, line, id: 'b', field },
        });
        expect(await readFile(path, 'utf8')).toBe(content);
        expect(existsSync(path + '.p2psync')).toBe(false);
      });
    }

    it('in `put` input (arguments or stdin) are refused with exit 2, and nothing is written', async () => {
      const path = fx.file('a.json');
      await writeFile(path, '[]\n');
      const arg = await runCli(['put', '--store', path, '--json', '{"id":"a"}', '{"id":"b","_meta":{"x":1}}']);
      expect(arg.code).toBe(2);
      expect(JSON.parse(arg.stdout.trim())).toMatchObject({
        event: 'error',
        code: 'E_RESERVED_FIELD',
        details: { file: 'argument 2', id: 'b', field: '_meta' },
      });
      const stdin = await runCli(['put', '--store', path, '--json'], {
        input: '{"id":"a"}\n{"id":"c","_deleted":false}\n',
      });
      expect(stdin.code).toBe(2);
      expect(JSON.parse(stdin.stdout.trim())).toMatchObject({
        code: 'E_RESERVED_FIELD',
        details: { file: '<stdin>', line: 2, id: 'c', field: '_deleted' },
      });
      expect(await readFile(path, 'utf8')).toBe('[]\n');
    });

    it('do not stop replication: documents from peers carry them and are stored with your fields only', async () => {
      for (const file of ['p.json', 'p.ndjson']) {
        const path = fx.file(file);
        const s = await fx.open({ path, watch: false });
        const origin = { kind: 'peer', peerToken: 'peer1' } as const;
        const wire = (id: string, deleted: boolean): DocState =>
          ({
            id,
            t: 1,
            _rev: '1-abc',
            _meta: { lwt: 1700000000000 },
            _attachments: {},
            _deleted: deleted,
          }) as unknown as DocState;
        await s.bulkWrite(
          [
            { document: wire('a', false), expected: null },
            { document: wire('b', false), expected: null },
          ],
          origin,
        );
        await s.bulkWrite([{ document: wire('b', true), expected: (await s.get(['b'])).get('b')! }], origin);
        await s.close();
        const text = await readFile(path, 'utf8');
        expect(text).not.toMatch(/_rev|_meta|_attachments|_deleted/);
        // The file p2psync wrote opens again.
        const again = await fx.open({ path, watch: false });
        expect((await again.all()).map((d) => d.id)).toEqual(['a']);
      }
    });
  });

  describe('a sidecar cut short', () => {
    it('loses its incomplete last record with a warning saying what was dropped; the documents stay', async () => {
      const path = fx.file('a.ndjson');
      let s = await fx.open({ path, watch: false });
      await s.bulkWrite(
        Array.from({ length: 50 }, (_, i) => ({ document: { id: `d${i}`, n: i, _deleted: false }, expected: null })),
        { kind: 'local' },
      );
      await s.bulkWrite([{ document: { id: 'late', _deleted: false }, expected: null }], { kind: 'local' });
      await s.close();
      const sidecar = await readFile(path + '.p2psync');
      let cut = sidecar.length >> 1;
      while (sidecar[cut - 1] === 0x0a) cut++;
      await writeFile(path + '.p2psync', sidecar.subarray(0, cut));
      const lastLine = sidecar.subarray(0, cut).toString('utf8').split('\n');
      const events: Array<Record<string, unknown>> = [];
      s = await fx.open({ path, watch: false, emit: (e) => events.push(e as never) });
      expect(events.filter((e) => e.event === 'warning')).toEqual([
        {
          event: 'warning',
          code: 'W_SIDECAR_TORN',
          message: expect.stringMatching(/dropped an incomplete last record \(\d+ bytes\)/),
          details: {
            file: path + '.p2psync',
            line: lastLine.length,
            bytes: Buffer.byteLength(lastLine.at(-1)!),
            records: 1,
          },
        },
      ]);
      expect((await s.all()).map((d) => d.id).sort()).toEqual(
        [...Array.from({ length: 50 }, (_, i) => `d${i}`), 'late'].sort(),
      );
      await s.close();
      // Repaired by that open: the next one is quiet.
      events.length = 0;
      await fx.open({ path, watch: false, emit: (e) => events.push(e as never) });
      expect(events.filter((e) => e.event === 'warning')).toEqual([]);
    });

    it('is refused (E_SIDECAR) when the damage is anywhere but the tail, and when the header itself is cut', async () => {
      const path = fx.file('a.json');
      const s = await fx.open({ path, watch: false });
      await s.bulkWrite([{ document: { id: 'a', _deleted: false }, expected: null }], { kind: 'local' });
      await s.bulkWrite([{ document: { id: 'b', _deleted: false }, expected: null }], { kind: 'local' });
      await s.close();
      const lines = (await readFile(path + '.p2psync', 'utf8')).split('\n');
      expect(lines.length).toBeGreaterThan(3);
      // The middle line cut short, the lines after it intact.
      const middle = [...lines];
      middle[1] = middle[1]!.slice(0, middle[1]!.length >> 1);
      await writeFile(path + '.p2psync', middle.join('\n'));
      await expect(openStore({ path, watch: false })).rejects.toMatchObject({
        code: 'E_SIDECAR',
        details: { line: 2 },
      });
      await writeFile(path + '.p2psync', lines[0]!.slice(0, 20));
      await expect(openStore({ path, watch: false })).rejects.toMatchObject({
        code: 'E_SIDECAR',
        details: { line: 1 },
      });
    });
  });

  describe('--collection NAME absent from the object', () => {
    it('is said (W_NEW_COLLECTION) when the store opens, and created at the first write with the other members kept', async () => {
      const path = fx.file('db.json');
      const original = '{\n  "users": [\n    {\n      "id": "u1"\n    }\n  ]\n}\n';
      await writeFile(path, original);
      const events: Array<Record<string, unknown>> = [];
      const s = await fx.open({ path, collection: 'posts', watch: false, emit: (e) => events.push(e as never) });
      expect(events).toEqual([
        {
          event: 'warning',
          code: 'W_NEW_COLLECTION',
          message: expect.stringMatching(/no "posts" member/),
          details: { file: path, collection: 'posts' },
        },
      ]);
      expect(await readFile(path, 'utf8')).toBe(original);
      await s.bulkWrite([{ document: { id: 'p1', _deleted: false }, expected: null }], { kind: 'local' });
      await s.close();
      expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ users: [{ id: 'u1' }], posts: [{ id: 'p1' }] });
      // Once it exists, nothing more is said; nor for a file p2psync creates itself.
      events.length = 0;
      await fx.open({ path, collection: 'posts', watch: false, emit: (e) => events.push(e as never) });
      await fx.open({
        path: fx.file('new.json'),
        collection: 'posts',
        watch: false,
        emit: (e) => events.push(e as never),
      });
      expect(events).toEqual([]);
    });
  });
});

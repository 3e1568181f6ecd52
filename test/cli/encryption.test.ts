import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli, runCliMany, type CliResult } from '../helpers/spawn.js';
import { filesContaining, snapshotDir } from '../crypt/harness.js';

const lines = (r: CliResult): Array<Record<string, unknown>> =>
  r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('CRUD commands on an encrypted store', () => {
  let dir: string;
  let store: string;
  let key: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'p2psync-crypt-cli-'));
    store = join(dir, 'people.ndjson');
    key = join(dir, 'store.key');
    await writeFile(key, 'a long random key\n');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('names the fields once, then needs only the key; the file holds ciphertext, ls/get print plaintext', async () => {
    const put = await runCli([
      'put',
      '--store',
      store,
      '--encrypt-fields',
      'ssn,notes',
      '--key-file',
      key,
      '{"id":"ada","name":"Ada","ssn":"078-05-1120","notes":{"x":[1]}}',
    ]);
    expect(put.code, put.stderr).toBe(0);
    expect(await filesContaining(dir, '078-05-1120')).toEqual([]);
    const onDisk = JSON.parse((await readFile(store, 'utf8')).trim()) as Record<string, string>;
    expect(onDisk).toEqual({
      id: 'ada',
      name: 'Ada',
      ssn: expect.stringMatching(/^p2psync:v1:/),
      notes: expect.stringMatching(/^p2psync:v1:/),
    });

    const put2 = await runCli(['put', '--store', store, '--key-file', key, '{"id":"bob","ssn":"219-09-9999"}']);
    expect(put2.code, put2.stderr).toBe(0);
    const ls = await runCli(['ls', '--store', store], { env: { P2PSYNC_ENCRYPTION_KEY: 'a long random key' } });
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toBe(
      '{"id":"ada","name":"Ada","ssn":"078-05-1120","notes":{"x":[1]}}\n{"id":"bob","ssn":"219-09-9999"}\n',
    );
    const get = await runCli(['get', '--store', store, '--json', 'bob'], { env: { P2PSYNC_KEY_FILE: key } });
    expect(lines(get)).toMatchObject([{ event: 'document', document: { id: 'bob', ssn: '219-09-9999' } }]);
    const rmr = await runCli(['rm', '--store', store, '--key-file', key, 'bob']);
    expect(rmr.code, rmr.stderr).toBe(0);
    expect(await filesContaining(dir, '219-09-9999')).toEqual([]); // the tombstone too
  });

  it('exits 2 without the key, with a wrong or missing key file, or with other fields; nothing changes', async () => {
    expect(
      (await runCli(['put', '--store', store, '--encrypt-fields', 'ssn', '--key-file', key, '{"id":"a","ssn":"1"}']))
        .code,
    ).toBe(0);
    await writeFile(join(dir, 'wrong.key'), 'another key');
    await writeFile(join(dir, 'empty.key'), '');
    const before = await snapshotDir(dir);
    const cases: Array<[string[], string]> = [
      [['ls', '--store', store], 'E_KEY_REQUIRED'],
      [['put', '--store', store, '{"id":"b","ssn":"plain"}'], 'E_KEY_REQUIRED'],
      [['rm', '--store', store, 'a'], 'E_KEY_REQUIRED'],
      [['get', '--store', store, '--key-file', join(dir, 'wrong.key'), 'a'], 'E_WRONG_KEY'],
      [['put', '--store', store, '--key-file', join(dir, 'empty.key'), '{"id":"b"}'], 'E_KEY_FILE'],
      [['ls', '--store', store, '--key-file', join(dir, 'nope.key')], 'E_KEY_FILE'],
      [['put', '--store', store, '--key-file', key, '--encrypt-fields', 'other', '{"id":"b"}'], 'E_BAD_OPTION'],
      [['join', '--topic', 'no-key-topic', '--store', store], 'E_KEY_REQUIRED'],
      [['join', '--topic', 'no-key-topic', '--store', store, '--key-file', join(dir, 'wrong.key')], 'E_WRONG_KEY'],
      [['rekey', '--store', store, '--key-file', join(dir, 'wrong.key'), '--new-key-file', key], 'E_WRONG_KEY'],
    ];
    const results = await runCliMany(cases.map(([args]) => [[...args, '--json']] as const));
    cases.forEach(([args, code], i) => {
      const r = results[i]!;
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(lines(r)[0]).toMatchObject({ event: 'error', code });
    });
    expect(await snapshotDir(dir)).toEqual(before);
  });

  it('exits 2 naming the field and document of a tampered value; the store and sidecar stay byte-identical', async () => {
    expect(
      (
        await runCli([
          'put',
          '--store',
          store,
          '--encrypt-fields',
          'ssn',
          '--key-file',
          key,
          '{"id":"a","ssn":"1"}',
          '{"id":"b","ssn":"2"}',
        ])
      ).code,
    ).toBe(0);
    const [a, b] = (await readFile(store, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, string>) as [Record<string, string>, Record<string, string>];
    [a.ssn, b.ssn] = [b.ssn!, a.ssn!]; // swapped between documents
    await writeFile(store, `${JSON.stringify(a)}\n${JSON.stringify(b)}\n`);
    const before = await snapshotDir(dir);
    const commands = [['ls'], ['get', 'b'], ['put', '{"id":"c"}'], ['rm', 'b']];
    const results = await runCliMany(
      commands.map((args) => [[args[0]!, '--store', store, '--key-file', key, '--json', ...args.slice(1)]] as const),
    );
    commands.forEach((args, i) => {
      const r = results[i]!;
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(lines(r).at(-1)).toMatchObject({
        event: 'error',
        code: 'E_DECRYPT',
        details: { id: 'a', field: 'ssn', file: store },
      });
    });
    expect(await snapshotDir(dir)).toEqual(before);
  });
});

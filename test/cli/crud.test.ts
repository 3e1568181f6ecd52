import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, runCliMany, type CliResult } from '../helpers/spawn.js';

const events = (r: CliResult): Array<Record<string, unknown>> =>
  r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('p2psync ls / get / put / rm', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'p2psync-crud-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('puts, lists, gets and removes documents, with exit codes for missing ids', async () => {
    const store = join(dir, 'notes.json');
    const put = await runCli(['put', '--store', store, '{"id":"a","t":1}', '{"id":"b"}']);
    expect(put.code, put.stderr).toBe(0);
    expect(put.stderr).toMatch(/put 2 documents \(created a, b\)/);
    expect(JSON.parse(await readFile(store, 'utf8'))).toEqual([{ id: 'a', t: 1 }, { id: 'b' }]);

    const ls = await runCli(['ls', '--store', store]);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toBe('{"id":"a","t":1}\n{"id":"b"}\n');

    const get = await runCli(['get', '--store', store, '--json', 'b', 'zz']);
    expect(get.code).toBe(1);
    expect(events(get)).toMatchObject([
      { event: 'document', document: { id: 'b' }, v: 1 },
      { event: 'error', code: 'E_NOT_FOUND', details: { ids: ['zz'] } },
    ]);

    const rmA = await runCli(['rm', '--store', store, '--json', 'a']);
    expect(rmA.code).toBe(0);
    expect(events(rmA)).toMatchObject([{ event: 'written', ids: ['a'], conflicts: [] }]);
    expect((await runCli(['rm', '--store', store, 'a'])).code).toBe(1);
    expect((await runCli(['rm', '--store', store, '--force', 'a'])).code).toBe(0);
    expect(JSON.parse(await readFile(store, 'utf8'))).toEqual([{ id: 'b' }]);
    // The delete is a tombstone in the sidecar, so it replicates.
    expect(await readFile(store + '.p2psync', 'utf8')).toMatch(/"id":"a","t":1,"_deleted":true/);
  });

  it('put and rm say when opening the store recovered a torn sidecar tail (W_SIDECAR_TORN), as join does', async () => {
    const store = join(dir, 'notes.ndjson');
    expect((await runCli(['put', '--store', store, '{"id":"a"}', '{"id":"b"}'])).code).toBe(0);
    /** Cuts the sidecar's last record in half, as a crash mid-append would. */
    const tear = async (): Promise<void> => {
      const text = await readFile(store + '.p2psync', 'utf8');
      const last = text.slice(text.lastIndexOf('\n', text.length - 2) + 1);
      await writeFile(store + '.p2psync', text.slice(0, text.length - 1 - (last.length >> 1)));
    };
    await tear();
    const put = await runCli(['put', '--store', store, '{"id":"c"}']);
    expect(put.code, put.stderr).toBe(0);
    expect(put.stderr).toMatch(
      /^p2psync: warning: .*dropped an incomplete last record \(\d+ bytes\).* \[W_SIDECAR_TORN\]$/m,
    );
    expect(put.stderr).toMatch(/put 1 document \(created c\)/);
    await tear();
    const removed = await runCli(['rm', '--store', store, '--json', 'a']);
    expect(removed.code, removed.stderr).toBe(0);
    expect(events(removed)).toMatchObject([
      { event: 'warning', code: 'W_SIDECAR_TORN', details: { file: store + '.p2psync', records: 1 } },
      { event: 'written', ids: ['a'] },
    ]);
    // Repaired by that open: the next write is quiet.
    const again = await runCli(['put', '--store', store, '--json', '{"id":"d"}']);
    expect(events(again).map((e) => e.event)).toEqual(['written']);
    expect(await readFile(store, 'utf8')).toBe('{"id":"b"}\n{"id":"c"}\n{"id":"d"}\n');
  });

  it('reads NDJSON or a JSON array on stdin and takes its options from env vars', async () => {
    const store = join(dir, 'db.json');
    await writeFile(store, JSON.stringify({ meta: { v: 1 }, users: [{ email: 'old@x.org' }] }));
    const env = { P2PSYNC_STORE: store, P2PSYNC_KEY: 'email', P2PSYNC_COLLECTION: 'users' };
    const ndjson = await runCli(['put', '--json'], {
      env,
      input: '{"email":"ada@x.org","n":1}\n\n{"email":"old@x.org","n":2}\n',
    });
    expect(ndjson.code, ndjson.stderr).toBe(0);
    expect(events(ndjson)).toMatchObject([{ event: 'written', ids: ['ada@x.org', 'old@x.org'] }]);
    const array = await runCli(['put'], { env, input: '[{"email":"bob@x.org"}]' });
    expect(array.code, array.stderr).toBe(0);
    expect(JSON.parse(await readFile(store, 'utf8'))).toEqual({
      meta: { v: 1 },
      users: [{ email: 'old@x.org', n: 2 }, { email: 'ada@x.org', n: 1 }, { email: 'bob@x.org' }],
    });
    const get = await runCli(['get', 'bob@x.org'], { env });
    expect(get.stdout).toBe('{"email":"bob@x.org"}\n');
    // --format overrides the extension.
    const txt = join(dir, 'list.txt');
    expect((await runCli(['put', '--store', txt, '--format', 'ndjson', '{"id":"x"}'])).code).toBe(0);
    expect(await readFile(txt, 'utf8')).toBe('{"id":"x"}\n');
  });

  it('exits 2 with a stable code on bad input and leaves the file untouched', async () => {
    const bad = join(dir, 'bad.ndjson');
    const content = '{"id":"a"}\n{"id":"a"}\n';
    await writeFile(bad, content);
    const badRuns = await runCliMany([
      [['ls', '--store', bad, '--json']],
      [['put', '--store', bad, '--json', '{"id":"b"}']],
    ]);
    for (const r of badRuns) {
      expect(r.code).toBe(2);
      expect(events(r)).toMatchObject([
        { event: 'error', code: 'E_DUPLICATE_KEY', details: { file: bad, line: 2, key: 'a', firstLine: 1 } },
      ]);
    }
    expect(await readFile(bad, 'utf8')).toBe(content);
    expect(existsSync(bad + '.p2psync')).toBe(false);

    const good = join(dir, 'good.json');
    const cases: Array<[string[], string]> = [
      [['put', '--store', good, '--json', '{"id":"a",}'], 'E_PARSE'],
      [['put', '--store', good, '--json', '{"name":"no id"}'], 'E_BAD_KEY'],
      [['put', '--store', good, '--json', '[1]'], 'E_NOT_OBJECT'],
      [['ls', '--store', join(dir, 'x.yaml'), '--json'], 'E_BAD_FORMAT'],
      [['ls', '--store', join(dir, 'x.ndjson'), '--collection', 'c', '--json'], 'E_BAD_OPTION'],
    ];
    const [unparsable, noStore, ...results] = await runCliMany([
      [['put', '--store', good], { input: '{"id":"a"}\n{"id":\n' }],
      [['ls']], // --store is required
      ...cases.map(([args]) => [args] as const),
    ]);
    cases.forEach(([args, code], i) => {
      const r = results[i]!;
      expect(r.code, args.join(' ')).toBe(2);
      expect(events(r)[0], args.join(' ')).toMatchObject({ event: 'error', code });
    });
    expect(existsSync(good)).toBe(false);
    expect(unparsable!.code).toBe(2);
    expect(unparsable!.stderr).toMatch(/<stdin>:2:7: invalid JSON.*\[E_PARSE\]/);
    expect(noStore!.code).toBe(2);
  });

  it('shows help with examples for each command', async () => {
    const commands = ['ls', 'get', 'put', 'rm'];
    for (const r of await runCliMany(commands.map((cmd) => [[cmd, '--help']] as const))) {
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/--store <file>[^]*?env:\s+P2PSYNC_STORE/);
      expect(r.stdout).toMatch(/Examples:\n\s+\$ p2psync /);
    }
  });
});

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileKeptVersions, keptPath } from '../../src/conflicts/index.js';
import type { KeptVersion } from '../../src/core/conflicts.js';
import { runCli, runCliMany, type CliResult } from '../helpers/spawn.js';

const events = (r: CliResult): Array<Record<string, unknown>> =>
  r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

const kept = (vid: string, id: string, fields: Record<string, unknown>, deleted = false): KeptVersion => ({
  vid,
  id,
  time: `2026-01-01T00:00:0${vid.length}.000Z`,
  peer: 'otherpeertoken',
  strategy: 'merge',
  side: 'local',
  fields: ['title'],
  document: { id, ...fields, _deleted: deleted } as KeptVersion['document'],
});

describe('p2psync conflicts ls / show / resolve', () => {
  let dir: string;
  let store: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'p2psync-conflicts-'));
    store = join(dir, 'notes.json');
    await writeFile(
      store,
      JSON.stringify([
        { id: 'n1', title: 'current' },
        { id: 'n2', title: 'two' },
      ]),
    );
    const k = await FileKeptVersions.open(keptPath(store), { limit: 10 });
    await k.keep([
      kept('a', 'n1', { title: 'first' }),
      kept('bb', 'n1', { title: 'second' }),
      kept('ccc', 'n2', { title: 'gone' }, true),
    ]);
    await k.close();
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('lists the documents with kept versions, shows them numbered, and writes a chosen one back', async () => {
    const ls = await runCli(['conflicts', 'ls', '--store', store]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toBe('n1\t2 versions\t2026-01-01T00:00:02.000Z\nn2\t1 version\t2026-01-01T00:00:03.000Z\n');

    const show = await runCli(['conflicts', 'show', '--store', store, 'n1', '--json']);
    expect(show.code, show.stderr).toBe(0);
    expect(events(show)).toMatchObject([
      {
        event: 'kept-versions',
        id: 'n1',
        current: { id: 'n1', title: 'current' },
        versions: [
          {
            n: 1,
            vid: 'a',
            strategy: 'merge',
            side: 'local',
            peer: 'otherpeertoken',
            fields: ['title'],
            deleted: false,
            document: { id: 'n1', title: 'first' },
          },
          { n: 2, vid: 'bb', document: { id: 'n1', title: 'second' } },
        ],
      },
    ]);
    const human = await runCli(['conflicts', 'show', '--store', store, 'n1']);
    expect(human.stdout).toMatch(
      /^current: \{"id":"n1","title":"current"\}\n1: .* merge this peer fields title: \{"id":"n1","title":"first"\}\n2: /,
    );

    const resolve = await runCli(['conflicts', 'resolve', '--store', store, 'n1', '--use', '1', '--json']);
    expect(resolve.code, resolve.stderr).toBe(0);
    expect(events(resolve)).toMatchObject([
      { event: 'written', ids: ['n1'], conflicts: [] },
      { event: 'conflict-cleared', id: 'n1', used: 1, cleared: 2 },
    ]);
    expect(JSON.parse(await readFile(store, 'utf8'))).toContainEqual({ id: 'n1', title: 'first' });
    expect((await runCli(['conflicts', 'ls', '--store', store])).stdout).toBe(
      'n2\t1 version\t2026-01-01T00:00:03.000Z\n',
    );
  });

  it('a kept delete is written as a delete; --keep-current only clears', async () => {
    const r = await runCli(['conflicts', 'resolve', '--store', store, 'n2', '--use', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/deleted n2 as kept version 1/);
    expect(JSON.parse(await readFile(store, 'utf8'))).toEqual([{ id: 'n1', title: 'current' }]);

    const keep = await runCli(['conflicts', 'resolve', '--store', store, 'n1', '--keep-current']);
    expect(keep.code, keep.stderr).toBe(0);
    expect(keep.stderr).toMatch(/cleared 2 kept versions of n1/);
    expect(JSON.parse(await readFile(store, 'utf8'))).toEqual([{ id: 'n1', title: 'current' }]);
    expect((await runCli(['conflicts', 'ls', '--store', store])).stdout).toBe('');
  });

  it('put reports which written ids have kept versions', async () => {
    const put = await runCli(['put', '--store', store, '--json', '{"id":"n1","title":"x"}', '{"id":"n3"}']);
    expect(events(put)).toMatchObject([{ event: 'written', ids: ['n3', 'n1'], conflicts: ['n1'] }]);
  });

  it('refused conflicts commands exit 2 with a message and write nothing', async () => {
    const cases: Array<[string[], RegExp, string]> = [
      [['show', 'nope'], /no kept versions of "nope"/, 'E_NO_CONFLICT'],
      [['resolve', 'nope', '--use', '1'], /no kept versions of "nope"/, 'E_NO_CONFLICT'],
      [['resolve', 'n1', '--use', '3'], /has no kept version 3; it has 2/, 'E_NO_CONFLICT'],
      [['resolve', 'n1'], /exactly one of --use N and --keep-current/, 'E_USAGE'],
      [['resolve', 'n1', '--use', '1', '--keep-current'], /exactly one of/, 'E_USAGE'],
    ];
    const before = await readFile(store, 'utf8');
    const results = await runCliMany(
      cases.map(([args]) => [['conflicts', args[0]!, '--store', store, ...args.slice(1), '--json']] as const),
    );
    cases.forEach(([args, message, code], i) => {
      const r = results[i]!;
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(events(r), args.join(' ')).toMatchObject([{ event: 'error', code }]);
      expect(String(events(r)[0]!.message)).toMatch(message);
    });
    expect(await readFile(store, 'utf8')).toBe(before);
    expect((await runCli(['conflicts', 'ls', '--store', store])).stdout.split('\n').filter(Boolean)).toHaveLength(2);
  });

  it('--use 0 is a usage error', async () => {
    const r = await runCli(['conflicts', 'resolve', '--store', store, 'n1', '--use', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/expected a version number from 1/);
  });

  it('join refuses a broken --conflict-handler at start-up with exit 2, naming the file, before touching the store', async () => {
    const handler = join(dir, 'handler.mjs');
    await writeFile(handler, 'export default { isEqual() { return true; } };');
    const fresh = join(dir, 'fresh.json');
    const r = await runCli([
      'join',
      '--topic',
      'handler-test',
      '--store',
      fresh,
      '--conflict-handler',
      handler,
      '--json',
    ]);
    expect(r.code).toBe(2);
    expect(events(r)[0]).toMatchObject({ event: 'error', code: 'E_CONFLICT_HANDLER', details: { file: handler } });
    await expect(readFile(fresh, 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

/**
 * A real browser peer: stock RxDB 17 running in headless Chromium (Debian's package, driven by playwright-core),
 * bundled from the rxdb devDependency by esbuild, replicating with `p2psync join` through `p2psync signal`, with
 * p2psync as master and as fork. Everything runs in a network namespace of the test's own (see browser/netns.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { isMaster } from '../../src/replication/master-rule.js';
import { putDocs, readDocs, TempDirs, waitUntil, writeDocsFile } from '../helpers/e2e.js';
import { canonicalDocs } from '../helpers/rxdb-join.js';
import { CliProcess } from '../helpers/spawn.js';
import { bundleRxdbPage, launchChromium } from './browser/chromium.js';
import { createNetns, type Netns } from './browser/netns.js';

const SEED = 40;

const temp = new TempDirs();
let netns: Netns | undefined;
let browser: BrowserContext | undefined;
/** The page's origin: any origin on 127.0.0.1 is a secure context (RxDB hashes with crypto.subtle). */
let pageUrl = '';
let pageServer: ChildProcess | undefined;
let signalUrl = '';
const processes: CliProcess[] = [];

function start(args: string[]): CliProcess {
  const proc = new CliProcess(args, { prefix: netns!.prefix });
  processes.push(proc);
  return proc;
}

beforeAll(async () => {
  netns = createNetns();
  const site = await temp.make('p2psync-site-');
  await writeFile(join(site, 'rxdb.js'), await bundleRxdbPage());
  await writeFile(
    join(site, 'index.html'),
    '<!doctype html><title>RxDB peer</title><script type="module" src="rxdb.js"></script>\n',
  );
  pageUrl = `http://127.0.0.1:${await startPageServer(site)}/index.html`;
  browser = await launchChromium(netns, await temp.make('p2psync-chromium-'));
  const signal = start(['signal', '--port', '0', '--json']);
  const listening = await signal.waitFor('listening', 20_000);
  signalUrl = `ws://127.0.0.1:${listening.port as number}`;
}, 120_000);

/** The static server, inside the namespace; resolves with its port. */
async function startPageServer(dir: string): Promise<number> {
  const script = fileURLToPath(new URL('./browser/static-server.mjs', import.meta.url));
  const [command, ...args] = [...netns!.prefix, process.execPath, script, dir];
  pageServer = spawn(command!, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(pageServer.stdout!.setEncoding('utf8'), 'data')) as [string];
  return (JSON.parse(line) as { port: number }).port;
}

afterAll(async () => {
  await browser?.close();
  pageServer?.kill('SIGTERM');
  await Promise.all(processes.map((p) => p.stop('SIGTERM', 3_000)));
  netns?.close();
  await temp.cleanup();
});

interface BrowserPeer {
  page: Page;
  events: Array<Record<string, unknown>>;
  storageToken: string;
  dump(): Promise<Array<Record<string, unknown>>>;
}

async function openRxdbPage(topic: string): Promise<BrowserPeer> {
  const page = await browser!.newPage();
  const events: Array<Record<string, unknown>> = [];
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.exposeBinding(
    'reportEvent',
    (_source, json: string) => void events.push(JSON.parse(json) as Record<string, unknown>),
  );
  await page.goto(pageUrl);
  await page.waitForFunction(() => 'rxdbPeer' in globalThis);
  const started = await page.evaluate(
    (o) =>
      (
        globalThis as unknown as {
          rxdbPeer: { start(o: unknown): Promise<{ storageToken: string; rxdbVersion: string }> };
        }
      ).rxdbPeer.start(o),
    {
      signal: signalUrl,
      topic,
      seed: SEED,
      prefix: 'R',
    },
  );
  expect(started.rxdbVersion).toMatch(/^17\./);
  expect(pageErrors).toEqual([]);
  return {
    page,
    events,
    storageToken: started.storageToken,
    dump: () =>
      page.evaluate(() =>
        (globalThis as unknown as { rxdbPeer: { dump(): Promise<Array<Record<string, unknown>>> } }).rxdbPeer.dump(),
      ),
  };
}

/** A p2psync storage token that takes `role` against `rxToken` (PROTOCOL §2.3). */
function tokenFor(role: 'master' | 'fork', rxToken: string): string {
  for (let i = 0; ; i++) {
    const token = `browserpeer${i}`;
    if (isMaster(token, rxToken) === (role === 'master')) return token;
  }
}

async function waitSame(peer: BrowserPeer, file: string, count: number): Promise<void> {
  let sizes = '';
  await waitUntil(
    async () => {
      const [rx, docs] = await Promise.all([peer.dump(), readDocs(file)]);
      sizes = `browser ${rx.length}, file ${docs.size}`;
      return rx.length === count && canonicalDocs(rx) === canonicalDocs(docs.values());
    },
    30_000,
    () => sizes,
  );
}

describe('stock RxDB 17 in headless Chromium <-> p2psync join', () => {
  for (const role of ['master', 'fork'] as const) {
    it(`replicate both ways, p2psync as ${role}`, async () => {
      const topic = `browser-${role}-${Date.now()}`;
      const rx = await openRxdbPage(topic);
      const file = join(await temp.make(), 'docs.ndjson');
      await writeDocsFile(
        file,
        Array.from({ length: SEED }, (_, i) => ({
          id: `P-${String(i + 1).padStart(4, '0')}`,
          title: `from p2psync ${i + 1}`,
          n: i + 1,
        })),
      );
      const joinProc = start([
        'join',
        '--topic',
        topic,
        '--store',
        file,
        '--signal',
        signalUrl,
        '--ice-bind',
        netns!.address,
        '--storage-token',
        tokenFor(role, rx.storageToken),
        '--json',
      ]);
      const connected = await joinProc.waitFor('peer-connected', 30_000);
      expect(connected).toMatchObject({ role, peerToken: rx.storageToken });

      // initial sync: each side gets the other's seed
      await waitSame(rx, file, 2 * SEED);
      // live, both ways: a p2psync write reaches the browser, a browser write reaches the file
      await putDocs(file, [{ id: 'P-live', title: 'written by p2psync put', n: -1 }]);
      await waitSame(rx, file, 2 * SEED + 1);
      await rx.page.evaluate(
        (doc) => (globalThis as unknown as { rxdbPeer: { put(d: unknown): Promise<void> } }).rxdbPeer.put(doc),
        { id: 'R-live', title: 'written in the browser', n: -2 },
      );
      await waitSame(rx, file, 2 * SEED + 2);

      expect(rx.events.filter((e) => e.event === 'error')).toEqual([]);
      expect(joinProc.events.filter((e) => e.event === 'error')).toEqual([]);
      await rx.page.close();
      await joinProc.stop('SIGTERM', 5_000);
    });
  }
});

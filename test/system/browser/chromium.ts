import { access, chmod, writeFile } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium, type BrowserContext } from 'playwright-core';
import type { Netns } from './netns.js';

/** Debian's `chromium` package; .ci/run installs it when missing. Playwright never downloads a browser here. */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Flags that work as root on this machine. `WebRtcHideLocalIpsWithMdns` off: Chromium otherwise hides its host
 * candidates behind random `.local` names, which node-datachannel cannot resolve (there is no mDNS responder here).
 * Measured: with the names hidden the pair still connected in this namespace, because node-datachannel learns
 * Chromium's address as a peer-reflexive candidate from its connectivity checks; the flag makes the host candidate
 * itself usable, so neither side depends on that.
 */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];

const ENTRY = fileURLToPath(new URL('./rxdb-page.mjs', import.meta.url));

/** Stock RxDB 17 (the rxdb devDependency) bundled for the browser, as one ES module. */
export async function bundleRxdbPage(): Promise<string> {
  const result = await build({
    entryPoints: [ENTRY],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'chrome120',
    // simple-peer's browser bundle and RxDB's utils look for these Node globals
    define: { global: 'globalThis', 'process.env.NODE_ENV': '"production"' },
    logLevel: 'silent',
  });
  const out = result.outputFiles[0];
  if (!out) throw new Error('esbuild produced no bundle');
  return out.text;
}

/**
 * Starts headless Chromium inside the namespace with a fresh profile in `dir`. Throws with a clear message when the
 * binary is missing or does not start: a browser test must never pass without a browser.
 */
export async function launchChromium(netns: Netns, dir: string): Promise<BrowserContext> {
  try {
    await access(CHROMIUM, constants.X_OK);
  } catch {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium; .ci/run does it)`);
  }
  // Playwright starts the executable it is given; this one enters the namespace first.
  const wrapper = join(dir, 'chromium-in-netns.sh');
  await writeFile(wrapper, `#!/bin/sh\nexec ${netns.prefix.join(' ')} ${CHROMIUM} "$@"\n`);
  await chmod(wrapper, 0o755);
  try {
    return await chromium.launchPersistentContext(join(dir, 'profile'), {
      executablePath: wrapper,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: 60_000,
    });
  } catch (err) {
    throw new Error(`Chromium (${CHROMIUM}) did not start: ${err instanceof Error ? err.message : String(err)}`);
  }
}

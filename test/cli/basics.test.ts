import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { runCli } from '../helpers/spawn.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

describe('p2psync CLI basics', () => {
  it('prints the package version', async () => {
    const r = await runCli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  it('shows help with exit codes and examples', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Exit codes:/);
    expect(r.stdout).toMatch(/Examples:/);
  });

  it('exits 2 on an unknown flag or command', async () => {
    expect((await runCli(['--bogus'])).code).toBe(2);
    expect((await runCli(['frobnicate'])).code).toBe(2);
  });
});

describe('usage errors and env vars', () => {
  it('prints an E_USAGE error event on stdout for a usage error with --json', async () => {
    const r = await runCli(['join', '--topic', 'short', '--store', 'never-created.json', '--json']);
    expect(r.code).toBe(2);
    const events = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events).toEqual([
      expect.objectContaining({
        event: 'error',
        code: 'E_USAGE',
        message: expect.stringMatching(/6 to 99 characters/),
      }),
    ]);
  });

  it('treats a boolean env var set to 0/false as off, and to 1/true as on', async () => {
    const off = await runCli(['ls', '--store', 'missing-store.json'], { env: { P2PSYNC_JSON: '0' } });
    expect(off.code).toBe(1);
    expect(off.stdout).toBe('');
    expect(off.stderr).toMatch(/\[E_IO\]/);
    const on = await runCli(['ls', '--store', 'missing-store.json'], { env: { P2PSYNC_JSON: 'true' } });
    expect(on.code).toBe(1);
    expect(JSON.parse(on.stdout)).toMatchObject({ event: 'error', code: 'E_IO' });
  });
});

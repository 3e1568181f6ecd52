import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { addIceOptions, iceSettingsFrom, type IceFlags } from '../../src/cli/ice-flags.js';

function parse(argv: string[], env: Record<string, string> = {}): IceFlags {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const command = addIceOptions(new Command('t').exitOverride());
    command.parse(argv, { from: 'user' });
    return command.opts<IceFlags>();
  } finally {
    for (const key of Object.keys(env)) if (!(key in saved)) delete process.env[key];
  }
}

describe('ICE flags', () => {
  it('reads P2PSYNC_ICE_SERVER as a list: a STUN and a TURN server stay two servers', () => {
    const flags = parse([], { P2PSYNC_ICE_SERVER: 'stun:a:3478,turn:u:p@b:3478  stun:c' });
    expect(iceSettingsFrom(flags).iceServers).toEqual(['stun:a:3478', 'turn:u:p@b:3478', 'stun:c']);
  });

  it('merges repeated flags with the lines of --ice-server-file, skipping blanks and comments', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'p2psync-ice-')), 'ice.txt');
    writeFileSync(
      file,
      '# TURN for the office\nturn:alice:s3cret@turn.example.org:3478\n\n  stun:stun.example.org  \r\n',
    );
    const flags = parse([
      '--ice-server',
      'stun:a',
      '--ice-server',
      'stun:b,stun:c',
      '--ice-server-file',
      file,
      '--ice-transport',
      'relay',
      '--ice-bind',
      '10.0.0.1',
    ]);
    expect(iceSettingsFrom(flags)).toEqual({
      iceServers: ['stun:a', 'stun:b', 'stun:c', 'turn:alice:s3cret@turn.example.org:3478', 'stun:stun.example.org'],
      iceBind: '10.0.0.1',
      iceTransport: 'relay',
    });
  });

  it('refuses an unreadable file and an unknown transport policy', () => {
    expect(() => iceSettingsFrom({ iceServerFile: '/nonexistent/p2psync-ice.txt' })).toThrow(
      /cannot read the ICE server file .*ENOENT/,
    );
    expect(() => parse(['--ice-transport', 'direct'])).toThrow(/expected all or relay/);
  });
});

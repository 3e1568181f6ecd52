// What the numbers were measured on: machine, load, versions, commit. Written into every results file.
import { cpus, totalmem, loadavg, platform, release, arch } from 'node:os';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './paths.mjs';

function pkgVersion(name) {
  try {
    return JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
}

function git(args) {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

export function machineInfo() {
  const c = cpus();
  const own = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const dirty = git(['status', '--porcelain', '--untracked-files=no']);
  return {
    date: new Date().toISOString(),
    cpus: c.length,
    cpuModel: c[0]?.model?.trim(),
    memGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${platform()} ${release()} ${arch()}`,
    loadAvgAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
    node: process.version,
    versions: {
      p2psync: own.version,
      rxdb: pkgVersion('rxdb'),
      'node-datachannel': pkgVersion('node-datachannel'),
      'simple-peer': pkgVersion('simple-peer'),
      lowdb: pkgVersion('lowdb'),
    },
    commit: git(['rev-parse', '--short', 'HEAD']),
    uncommittedChanges: dirty === undefined ? undefined : dirty.length > 0,
  };
}

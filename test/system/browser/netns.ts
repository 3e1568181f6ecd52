import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/**
 * A network namespace of this test's own, with loopback and one veth pair (both ends inside it). Chromium never
 * gathers ICE candidates on loopback, and this kernel has no `dummy` links, so the veth end `v0` carries a private
 * address that Chromium and node-datachannel both use; all traffic stays inside the namespace.
 */
export interface Netns {
  readonly name: string;
  /** The address on `v0`: bind ICE to it (`--ice-bind`). */
  readonly address: string;
  /** Runs a command inside the namespace: `[...prefix, command, ...args]` (`ip netns exec` execs, not forks). */
  readonly prefix: string[];
  /** Deletes the namespace. Idempotent. */
  close(): void;
}

const ADDRESS = '10.254.7.1';
const GATEWAY = '10.254.7.2';

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export function createNetns(): Netns {
  const name = `p2psync-browser-${process.pid}-${randomBytes(3).toString('hex')}`;
  ip('netns', 'add', name);
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    ip('netns', 'del', name);
  };
  try {
    ip('-n', name, 'link', 'set', 'lo', 'up');
    ip('-n', name, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
    ip('-n', name, 'addr', 'add', `${ADDRESS}/24`, 'dev', 'v0');
    ip('-n', name, 'link', 'set', 'v0', 'up');
    ip('-n', name, 'link', 'set', 'v1', 'up');
    // Without permission to enumerate interfaces Chromium gathers host candidates only on the interface of the
    // default route. The gateway answers nothing: no packet leaves the namespace.
    ip('-n', name, 'route', 'add', 'default', 'via', GATEWAY, 'dev', 'v0');
  } catch (err) {
    close();
    throw err;
  }
  return { name, address: ADDRESS, prefix: ['ip', 'netns', 'exec', name], close };
}

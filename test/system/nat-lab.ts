/**
 * A small internet in network namespaces, made and destroyed by the system tests: a "public" namespace with
 * a bridge (10.N.0.1: p2psync signal and coturn), and two sites, each a host behind its own NAT router:
 *
 *   a (10.N.1.2) -- ra [NAT] 10.N.0.2 --+-- pub 10.N.0.1 (signal, coturn: STUN + TURN)
 *   b (10.N.2.2) -- rb [NAT] 10.N.0.3 --+
 *
 * Cone NAT: MASQUERADE (the mapping keeps the source port: endpoint-independent). Symmetric NAT: MASQUERADE
 * --random-fully (a new random port per destination). Both drop unsolicited inbound traffic. The hosts cannot
 * reach each other's private addresses.
 * Every address lives inside namespaces created here; nothing is routed to the machine's own network.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type NatKind = 'cone' | 'symmetric';

export const TURN_USER = 'alice';
export const TURN_PASSWORD = 's3cret@p2psync';

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function inNs(ns: string, ...args: string[]): void {
  execFileSync('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
}

export class NatLab {
  readonly id = randomBytes(3).toString('hex');
  /** Second octet of every address: random per run, so a left-over lab never looks like this one. */
  readonly net = 10 + (randomBytes(1)[0]! % 200);
  readonly ns = {
    pub: `p2s-${this.id}-pub`,
    ra: `p2s-${this.id}-ra`,
    rb: `p2s-${this.id}-rb`,
    a: `p2s-${this.id}-a`,
    b: `p2s-${this.id}-b`,
  };
  readonly pubAddress = `10.${this.net}.0.1`;
  /** A second public address of the same coturn, so that `doctor` can compare mappings towards two servers. */
  readonly pubAddress2 = `10.${this.net}.0.4`;
  readonly dir = mkdtempSync(join(tmpdir(), 'p2psync-natlab-'));
  private readonly created: string[] = [];
  private readonly daemons: ChildProcess[] = [];

  /** Builds the namespaces and NATs; on any failure tears down what exists and throws (loudly). */
  static create(kinds: { a: NatKind; b: NatKind }): NatLab {
    const lab = new NatLab();
    try {
      lab.build(kinds);
    } catch (err) {
      lab.destroy();
      const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
      throw new Error(
        `cannot build the NAT lab (root, iproute2 and iptables are needed): ${(err as Error).message} ${stderr}`,
      );
    }
    return lab;
  }

  private build(kinds: { a: NatKind; b: NatKind }): void {
    for (const ns of Object.values(this.ns)) {
      ip('netns', 'add', ns);
      this.created.push(ns);
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    const { pub } = this.ns;
    ip('-n', pub, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', pub, 'addr', 'add', `${this.pubAddress}/24`, 'dev', 'br0');
    ip('-n', pub, 'addr', 'add', `${this.pubAddress2}/24`, 'dev', 'br0');
    ip('-n', pub, 'link', 'set', 'br0', 'up');
    const sites = [
      { host: this.ns.a, router: this.ns.ra, index: 1, kind: kinds.a },
      { host: this.ns.b, router: this.ns.rb, index: 2, kind: kinds.b },
    ];
    for (const { host, router, index, kind } of sites) {
      const port = `r${index}`;
      // the router's uplink "wan" sits on the public bridge as "r1"/"r2"
      ip('link', 'add', 'wan', 'netns', router, 'type', 'veth', 'peer', 'name', port, 'netns', pub);
      ip('-n', pub, 'link', 'set', port, 'master', 'br0');
      ip('-n', pub, 'link', 'set', port, 'up');
      ip('-n', router, 'addr', 'add', `10.${this.net}.0.${1 + index}/24`, 'dev', 'wan');
      ip('-n', router, 'link', 'set', 'wan', 'up');
      ip('link', 'add', 'lan', 'netns', router, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host);
      ip('-n', router, 'addr', 'add', `10.${this.net}.${index}.1/24`, 'dev', 'lan');
      ip('-n', router, 'link', 'set', 'lan', 'up');
      ip('-n', host, 'addr', 'add', `10.${this.net}.${index}.2/24`, 'dev', 'eth0');
      ip('-n', host, 'link', 'set', 'eth0', 'up');
      ip('-n', host, 'route', 'add', 'default', 'via', `10.${this.net}.${index}.1`);
      inNs(router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
      const nat = ['iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', 'wan', '-j', 'MASQUERADE'];
      inNs(router, ...(kind === 'symmetric' ? [...nat, '--random-fully'] : nat));
      // Like a home router, drop unsolicited traffic to the router itself. Without this, a peer's early ICE
      // check creates a conntrack entry for the inbound flow, and the host's own outbound packet to that peer
      // then gets a different port (a clash), which turns even a cone NAT into a symmetric one.
      inNs(router, 'iptables', '-A', 'INPUT', '-i', 'wan', '-m', 'conntrack', '--ctstate', 'NEW,INVALID', '-j', 'DROP');
    }
  }

  /** Starts coturn (STUN and TURN on 3478 UDP, long-term credentials) in the public namespace; resolves when it listens. */
  async startCoturn(): Promise<void> {
    const args = [
      'netns',
      'exec',
      this.ns.pub,
      'turnserver',
      '-n',
      `--listening-ip=${this.pubAddress}`,
      `--listening-ip=${this.pubAddress2}`,
      `--relay-ip=${this.pubAddress}`,
      '--listening-port=3478',
      '--lt-cred-mech',
      `--user=${TURN_USER}:${TURN_PASSWORD}`,
      '--realm=p2psync.test',
      '--fingerprint',
      '--no-tls',
      '--no-dtls',
      '--no-tcp',
      '--no-cli',
      '--log-file=stdout',
      '--simple-log',
      '--min-port=49152',
      '--max-port=49400',
      `--pidfile=${join(this.dir, 'turnserver.pid')}`,
      `--db=${join(this.dir, 'turndb')}`,
    ];
    const child = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.daemons.push(child);
    let log = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`coturn did not start within 10 s:\n${log.slice(-2000)}`)),
        10_000,
      );
      const onData = (d: Buffer): void => {
        log += d.toString();
        if (/Total General servers/.test(log)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('error', (err) => reject(new Error(`cannot run turnserver (Debian package coturn): ${err.message}`)));
      child.once('exit', (code) => reject(new Error(`coturn exited with ${code}:\n${log.slice(-2000)}`)));
    });
  }

  turnUrl(password = TURN_PASSWORD): string {
    return `turn:${TURN_USER}:${encodeURIComponent(password)}@${this.pubAddress}:3478`;
  }

  stunUrl(second = false): string {
    return `stun:${second ? this.pubAddress2 : this.pubAddress}:3478`;
  }

  /** Writes an --ice-server-file with these URLs (and a comment) into the lab's directory. */
  iceFile(urls: string[]): string {
    const file = join(this.dir, `ice-${randomBytes(3).toString('hex')}.txt`);
    writeFileSync(file, `# ICE servers of the NAT lab\n${urls.join('\n')}\n`, { mode: 0o600 });
    return file;
  }

  /** Kills the daemons and deletes every namespace this lab made. Idempotent; never throws. */
  destroy(): void {
    for (const child of this.daemons.splice(0)) {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const ns of this.created.splice(0).reverse()) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // already gone
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

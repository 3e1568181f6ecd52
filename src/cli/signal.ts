import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ExitCode, P2PSyncError, exitCodeFor } from '../core/errors.js';
import {
  DEFAULT_SIGNAL_HOST,
  DEFAULT_SIGNAL_LIMITS,
  DEFAULT_SIGNAL_PORT,
  startSignalServer,
  type SignalServerOptions,
} from '../signaling/server.js';
import { redactUrl } from '../signaling/client-options.js';
import { DEFAULT_MEMBER_TTL_MS } from '../signaling/cluster.js';
import { installSignalHandlers } from './lifecycle.js';
import type { CliContext } from './context.js';
import { flag, jsonFlag, parseInteger, parsePort, parseSeconds } from './options.js';
import { Output } from './output.js';

/** Flags as commander hands them over. */
interface SignalFlags {
  port: number;
  host: string;
  tokenFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  maxFrameBytes?: number;
  maxRoomsPerSocket?: number;
  maxPeersPerRoom?: number;
  maxFramesPerSecond?: number;
  maxConnections?: number;
  redis?: string;
  redisTtl: number;
  json: boolean;
}

/** Env var holding the token itself, for platforms that inject secrets as env vars. There is no --token flag. */
const TOKEN_ENV = 'P2PSYNC_TOKEN';
/** Tokens shorter than this are accepted with a warning: they can be guessed. */
const MIN_TOKEN_LENGTH = 16;

function readSecretFile(path: string, code: 'E_TLS_FILE' | 'E_TOKEN_FILE', what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
    throw new P2PSyncError(code, `cannot read the ${what} ${path}: ${reason}`, { file: path }, { cause: err });
  }
}

/** Turns flags and env into library options; reads the token and TLS files (errors exit 2). */
export function signalOptions(flags: SignalFlags, env: NodeJS.ProcessEnv): SignalServerOptions {
  const options: SignalServerOptions = { port: flags.port, host: flags.host, limits: {} };
  if (flags.tokenFile !== undefined) {
    // A trailing newline from `echo secret > file` is not part of the token.
    const token = readSecretFile(flags.tokenFile, 'E_TOKEN_FILE', 'token file').toString('utf8').trim();
    if (token === '')
      throw new P2PSyncError('E_TOKEN_FILE', `the token file ${flags.tokenFile} is empty`, { file: flags.tokenFile });
    options.token = token;
  } else if (env[TOKEN_ENV] !== undefined && env[TOKEN_ENV] !== '') {
    options.token = env[TOKEN_ENV].trim();
  }
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) {
    throw new P2PSyncError('E_USAGE', '--tls-cert and --tls-key must be given together', {
      option: flags.tlsCert === undefined ? 'tls-cert' : 'tls-key',
    });
  }
  if (flags.tlsCert !== undefined && flags.tlsKey !== undefined) {
    options.tls = {
      cert: readSecretFile(flags.tlsCert, 'E_TLS_FILE', 'TLS certificate'),
      key: readSecretFile(flags.tlsKey, 'E_TLS_FILE', 'TLS key'),
    };
  }
  const limits = options.limits!;
  if (flags.maxFrameBytes !== undefined) limits.maxFrameBytes = flags.maxFrameBytes;
  if (flags.maxRoomsPerSocket !== undefined) limits.maxRoomsPerSocket = flags.maxRoomsPerSocket;
  if (flags.maxPeersPerRoom !== undefined) limits.maxPeersPerRoom = flags.maxPeersPerRoom;
  if (flags.maxFramesPerSecond !== undefined) limits.maxFramesPerSecond = flags.maxFramesPerSecond;
  if (flags.maxConnections !== undefined) limits.maxConnections = flags.maxConnections;
  if (flags.redis !== undefined && flags.redis !== '')
    options.redis = { url: flags.redis, memberTtlMs: Math.round(flags.redisTtl * 1000) };
  return options;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\./.test(host);
}

async function runSignal(flags: SignalFlags, ctx: CliContext): Promise<number> {
  const out = new Output(ctx, flags.json);
  // Before anything is printed: a harness that signals as soon as it reads `listening` must not kill us.
  const stopper = installSignalHandlers();
  try {
    const options = signalOptions(flags, ctx.env);
    // Only Redis news is printed: per-socket events are not even built.
    const server = await startSignalServer({ ...options, peerEvents: false });
    // Redis state changes are operational news: print them as events (they carry no credentials).
    server.events$.subscribe((e) => {
      if (e.event === 'redis-up')
        out.event({ event: 'redis-up', url: e.url }, `p2psync signal: Redis ${e.url} connected; rooms are shared`);
      else if (e.event === 'redis-down') {
        const { url, message } = e;
        out.event(
          { event: 'redis-down', url, message },
          `p2psync signal: Redis ${url} unreachable (${message}); serving local rooms only, retrying`,
        );
      }
    });
    const auth = options.token !== undefined;
    const tls = options.tls !== undefined;
    out.event(
      {
        event: 'listening',
        host: server.host,
        port: server.port,
        url: server.url,
        tls,
        auth,
        ...(options.redis ? { redis: redactUrl(options.redis.url) } : {}),
      },
      `p2psync signal: listening on ${server.url} (token ${auth ? 'required' : 'off'}, TLS ${tls ? 'on' : 'off'}${options.redis ? `, rooms shared through ${redactUrl(options.redis.url)}` : ''}); /healthz and /metrics on the same port`,
    );
    if (!isLoopback(server.host) && !auth)
      out.warn(
        'W_OPEN_SERVER',
        `listening on ${server.host} without an access token: anyone who can reach it can use it`,
      );
    if (!isLoopback(server.host) && auth && !tls)
      out.warn('W_NO_TLS', `listening on ${server.host} without TLS: the token travels in clear text`);
    if (auth && options.token!.length < MIN_TOKEN_LENGTH)
      out.warn('W_WEAK_TOKEN', `the access token has fewer than ${MIN_TOKEN_LENGTH} characters`);
    if (!stopper.signal.aborted)
      await new Promise((resolve) => stopper.signal.addEventListener('abort', resolve, { once: true }));
    const reason = String(stopper.signal.reason);
    out.info(`p2psync signal: ${reason} received, closing connections`);
    await server.close();
    const exitCode = stopper.interruptedExitCode() ?? ExitCode.ok;
    out.event({ event: 'closed', reason, exitCode }, 'p2psync signal: stopped');
    return exitCode;
  } catch (err) {
    return exitCodeFor(out.error(err));
  } finally {
    stopper.dispose();
  }
}

const count = (min: number, max: number) => parseInteger(min, max);

export function registerSignal(program: Command, ctx: CliContext): void {
  const d = DEFAULT_SIGNAL_LIMITS;
  program
    .command('signal')
    .description(
      'host a signaling server that p2psync and stock RxDB 17 clients use (WebSocket, with /healthz and /metrics)',
    )
    .addOption(flag('--port <n>', 'TCP port; 0 picks a free one').argParser(parsePort).default(DEFAULT_SIGNAL_PORT))
    .addOption(flag('--host <host>', 'interface to bind (0.0.0.0 or :: for all)').default(DEFAULT_SIGNAL_HOST))
    .addOption(
      flag(
        '--token-file <path>',
        `file holding the access token clients must send as ?token= (env ${TOKEN_ENV} may hold the token itself)`,
      ),
    )
    .addOption(flag('--tls-cert <path>', 'PEM certificate (chain): serve wss:// and https://'))
    .addOption(flag('--tls-key <path>', 'PEM private key for --tls-cert'))
    .addOption(
      flag('--max-frame-bytes <n>', 'largest WebSocket message accepted')
        .argParser(count(256, 100 * 1024 * 1024))
        .default(d.maxFrameBytes),
    )
    .addOption(
      flag('--max-rooms-per-socket <n>', 'rooms one connection may join')
        .argParser(count(1, 1_000_000))
        .default(d.maxRoomsPerSocket),
    )
    .addOption(
      flag('--max-peers-per-room <n>', 'members per room').argParser(count(1, 1_000_000)).default(d.maxPeersPerRoom),
    )
    .addOption(
      flag('--max-frames-per-second <n>', 'sustained frames per second per connection (bursts of twice that)')
        .argParser(count(1, 1_000_000))
        .default(d.maxFramesPerSecond),
    )
    .addOption(
      flag('--max-connections <n>', 'open WebSocket connections in total')
        .argParser(count(1, 10_000_000))
        .default(d.maxConnections),
    )
    .addOption(
      flag(
        '--redis <url>',
        'share rooms with other signaling nodes through Redis (redis://[:password@]host:port); prefer the env var when the URL holds a password',
      ),
    )
    .addOption(
      flag('--redis-ttl <seconds>', 'with --redis: how long the members of a node that died stay listed')
        .argParser(parseSeconds)
        .default(DEFAULT_MEMBER_TTL_MS / 1000),
    )
    .addOption(jsonFlag())
    .addHelpText(
      'after',
      `
The server speaks RxDB 17's signaling protocol: RxDB apps connect unchanged with
  signalingServerUrl: 'ws://HOST:PORT/?token=TOKEN'
GET /healthz is open; GET /metrics (Prometheus) needs the token when one is set.
${TOKEN_ENV} holds the token itself; --token-file wins when both are set. There is no --token flag:
command lines are visible to every user of the machine.

Exit codes: 0 stopped by SIGTERM, 130 stopped by SIGINT, 1 port in use or runtime failure,
2 bad flag or unreadable token/TLS file.

Examples:
  $ p2psync signal
  $ p2psync signal --port 0 --json
  $ p2psync signal --host 0.0.0.0 --token-file /etc/p2psync/token --tls-cert cert.pem --tls-key key.pem
  $ P2PSYNC_TOKEN=s3cret-from-a-vault p2psync signal --port 9000 --max-peers-per-room 20
  $ P2PSYNC_REDIS=redis://:pw@10.0.0.5:6379 p2psync signal --host 0.0.0.0 --token-file /etc/p2psync/token`,
    )
    .action(async (flags: SignalFlags) => {
      ctx.exitCode = await runSignal(flags, ctx);
    });
}

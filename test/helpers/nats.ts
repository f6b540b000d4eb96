/**
 * Real nats-server processes for the cluster tests: one server, or a cluster
 * of servers routed on loopback, each on free loopback ports and always
 * stopped when the test ends (pass or fail). Managers that join them, and
 * child processes that run tsage nodes, are likewise reaped.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { ActorManager, type ClusterOptions } from '../../ts/index.js';
import { freePort, pumpUntil } from './net.js';
import { withTimeout } from './wait.js';

let checked = false;

/** Throws, saying how to get it, when nats-server is not installed. */
export function requireNatsServer(): void {
  if (checked) return;
  const r = spawnSync('nats-server', ['--version'], { encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0) {
    throw new Error(
      'nats-server is not installed: the cluster tests run real NATS servers. Install it (Debian/Ubuntu: apt-get install nats-server; .ci/run does this) and re-run.',
    );
  }
  checked = true;
}

export interface NatsServer {
  readonly port: number;
  readonly url: string;
  readonly pid: number;
  /** Its monitoring port (cluster servers only; 0 otherwise). */
  readonly monitor: number;
  /** The server's stderr so far (its log). */
  log(): string;
  /** Kills the server with `signal` (default SIGKILL) and waits for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Sends a signal without waiting (SIGSTOP/SIGCONT). */
  signal(signal: NodeJS.Signals): void;
}

export interface NatsServerOptions {
  /** Extra command-line arguments (`--user`, `--pass`, `--auth`...). */
  args?: string[];
  /** A configuration file's text (written to a temporary file, removed at the end). */
  config?: string;
  /** Routes: this server's cluster port and the other servers' cluster ports. */
  cluster?: { port: number; routes: number[] };
}

/** Polls `cond` every 10 ms until it holds; throws `what` after `ms` (the loop itself stops then). */
async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!(await cond())) {
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

/**
 * Starts a nats-server on a free loopback port; it is killed when the test ends.
 * A port found free can be taken by another process before the server binds it
 * (tests run in parallel), so a start that fails for that reason is tried again
 * on another port, a bounded number of times.
 */
export async function startNats(t: ExecutionContext, options: NatsServerOptions = {}): Promise<NatsServer> {
  requireNatsServer();
  for (let attempt = 1; ; attempt++) {
    try {
      return await startNatsOnce(t, options);
    } catch (err) {
      if (!(err instanceof PortTaken) || attempt === 5) throw err;
    }
  }
}

/** The server could not bind a port that was free a moment before. */
class PortTaken extends Error {}

async function startNatsOnce(t: ExecutionContext, options: NatsServerOptions): Promise<NatsServer> {
  const port = await freePort('tcp');
  const args = ['-a', '127.0.0.1', '-p', String(port), ...(options.args ?? [])];
  if (options.config !== undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'tsage-nats-'));
    const file = join(dir, 'server.conf');
    writeFileSync(file, options.config);
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    args.push('-c', file);
  }
  let monitor = 0;
  if (options.cluster !== undefined) {
    monitor = await freePort('tcp');
    args.push('-m', String(monitor));
    args.push('--cluster_name', 'tsage-test', '--cluster', `nats://127.0.0.1:${options.cluster.port}`);
    if (options.cluster.routes.length > 0) {
      args.push('--routes', options.cluster.routes.map((p) => `nats://127.0.0.1:${p}`).join(','));
    }
  }
  const child = spawn('nats-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    log += s;
  });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  t.teardown(() => kill('SIGKILL'));
  await until(
    () => {
      if (child.exitCode !== null) {
        const Failure = log.includes('address already in use') ? PortTaken : Error;
        throw new Failure(`nats-server exited at start:\n${log}`);
      }
      return log.includes('Server is ready');
    },
    10_000,
    `nats-server on port ${port} to be ready`,
  );
  return {
    port,
    monitor,
    url: `nats://127.0.0.1:${port}`,
    pid: child.pid!,
    log: () => log,
    kill,
    signal: (s) => {
      child.kill(s);
    },
  };
}

/** Three servers routed to each other on loopback; resolves once every server has its two routes. */
export async function startNatsCluster(t: ExecutionContext, n = 3): Promise<NatsServer[]> {
  const clusterPorts: number[] = [];
  for (let i = 0; i < n; i++) clusterPorts.push(await freePort('tcp'));
  const servers = await Promise.all(
    clusterPorts.map((port, i) =>
      startNats(t, { cluster: { port, routes: clusterPorts.filter((_, j) => j !== i) } }),
    ),
  );
  const routes = async (s: NatsServer): Promise<number> => {
    const r = await fetch(`http://127.0.0.1:${s.monitor}/routez`);
    return ((await r.json()) as { num_routes: number }).num_routes;
  };
  await until(
    async () => (await Promise.all(servers.map(routes))).every((k) => k === n - 1),
    15_000,
    `a ${n}-server NATS cluster to form its routes`,
  );
  return servers;
}

/** A new manager joined to the cluster as `node`; it leaves and is reset when the test ends. */
export async function joined(
  t: ExecutionContext,
  servers: string | string[],
  node: string,
  options: Partial<ClusterOptions> = {},
): Promise<ActorManager> {
  const mgr = new ActorManager();
  t.teardown(() => mgr.reset());
  await mgr.joinCluster({ servers, node, ...options });
  return mgr;
}

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'cluster');

/** A tsage node in a child process, driven over IPC. */
export interface NodeProcess {
  readonly pid: number;
  readonly child: ChildProcess;
  /** Sends a command and resolves with the child's answer to it. */
  ask<T = any>(command: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  /** Resolves with the exit code (or signal) once the process has exited. */
  readonly exited: Promise<number | string>;
}

let nextAsk = 0;

/**
 * Starts `test/fixtures/cluster/node.ts` (with tsx) and waits until it has joined as `node`.
 * The process is killed when the test ends; its stderr is logged on the test if it fails.
 */
export async function startNode(
  t: ExecutionContext,
  url: string | string[],
  node: string,
  setup: Record<string, unknown> = {},
): Promise<NodeProcess> {
  const child = spawn(process.execPath, ['--import=tsx', join(fixtures, 'node.ts')], {
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    env: { ...process.env, TSAGE_TEST_NODE: JSON.stringify({ url, node, ...setup }) },
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
  });
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    if (stderr.trim() !== '' && !t.passed) t.log(`node ${node} stderr:\n${stderr}`);
  });
  const waiting = new Map<number, (v: unknown) => void>();
  child.on('message', (m: any) => {
    const w = waiting.get(m?.id);
    if (w !== undefined) {
      waiting.delete(m.id);
      w(m.reply);
    }
  });
  const ask = <T>(command: Record<string, unknown>, timeoutMs = 20_000): Promise<T> => {
    const id = ++nextAsk;
    const p = new Promise<T>((resolve) => waiting.set(id, resolve as (v: unknown) => void));
    child.send({ id, ...command });
    return withTimeout(
      Promise.race([
        p,
        exited.then((c) => {
          throw new Error(
            `node ${node} exited (${c}) before answering ${JSON.stringify(command)}:\n${stderr}`,
          );
        }),
      ]),
      timeoutMs,
      `node ${node} to answer ${JSON.stringify(command)}`,
    );
  };
  const proc: NodeProcess = { pid: child.pid!, child, ask, exited };
  await ask({ cmd: 'ready' }, 30_000);
  return proc;
}

/**
 * Ticks the managers until each lists `nodes` nodes, then waits until each one's subscriptions
 * (as its actors stand now) have reached the server: after this, what one sends the others hear.
 */
export async function settle(
  mgrs: readonly ActorManager[],
  nodes: number,
  timeoutMs = 10_000,
): Promise<void> {
  await pumpUntil(
    mgrs,
    () => mgrs.every((m) => m.nodes.length === nodes),
    timeoutMs,
    `every manager to see ${nodes} nodes`,
  );
  for (const m of mgrs) m.tick();
  await Promise.all(
    mgrs.map((m) =>
      (m as unknown as { clusterLink: { nc: { flush(): Promise<void> } } }).clusterLink.nc.flush(),
    ),
  );
}

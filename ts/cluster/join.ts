/**
 * Joining: connect to NATS (saying plainly why not, when not), subscribe,
 * take the roll call (every live process answers with its heartbeat, so the
 * joiner knows the cluster at once and finds out if its name is taken), then
 * start heartbeating. A node's process groups join through the same steps
 * with the node's name and incarnation, and connections of their own.
 */
import { connect, type NatsConnection, nkeyAuthenticator } from '@nats-io/transport-node';
import { abortable, signalOption, throwIfAborted } from '../abort.js';
import { ClusterConnectFailed, InvalidOption, NodeNameTaken } from '../errors.js';
import { ClusterLink, type ClusterManager, type Place, randomId } from './link.js';
import { MAIN } from './members.js';
import {
  type ClusterOptions,
  isToken,
  type ResolvedClusterOptions,
  resolveClusterOptions,
} from './options.js';
import { encodeHeartbeat, type Heartbeat, parseHeartbeat } from './wire.js';

/** What a node's main process hands its process groups so they can join as part of the node. */
export interface GroupClusterConfig {
  /** The options, less anything that cannot be copied to another process (functions). */
  options: ClusterOptions;
  inc: number;
}

function describeServers(o: ResolvedClusterOptions): string {
  const s = o.nats.servers ?? '127.0.0.1:4222';
  return Array.isArray(s) ? s.join(', ') : s;
}

/** Connects, turning the client's errors into one that names the cause. */
async function open(o: ResolvedClusterOptions): Promise<NatsConnection> {
  const nats = { ...o.nats };
  if (o.nkeySeed !== undefined) nats.authenticator = nkeyAuthenticator(new TextEncoder().encode(o.nkeySeed));
  const where = describeServers(o);
  try {
    return await connect(nats);
  } catch (err) {
    const e = err as Error & { code?: string };
    let why: string;
    if (e.name === 'AuthorizationError' || /authoriz|authentic/i.test(e.message)) {
      why = `the NATS server refused authentication (${e.message})`;
    } else if (e.code === 'ERR_INVALID_URL' || e.name === 'InvalidArgumentError' || e.name === 'TypeError') {
      why = `a server URL is not valid (${e.message})`;
    } else if (/certificate|tls|ssl/i.test(e.message)) {
      why = `the TLS handshake with the NATS server failed (${e.message})`;
    } else if (e.name === 'TimeoutError') {
      why = `no NATS server answered in time (${e.message})`;
    } else {
      why = `no NATS server could be reached (${e.message}${(e.cause as Error | undefined)?.message ? `: ${(e.cause as Error).message}` : ''})`;
    }
    throw new ClusterConnectFailed(`joinCluster: ${why}; servers: ${where}`, { cause: err });
  }
}

/** The roll call: every live process answers with its heartbeat. Main processes' answers come first. */
async function rollCall(link: ClusterLink, o: ResolvedClusterOptions): Promise<Heartbeat[]> {
  const answers: Heartbeat[] = [];
  try {
    const it = await link.nc.requestMany(link.subjects.hello, encodeHeartbeat(link.heartbeat('hello')), {
      strategy: 'stall',
      stall: 200,
      maxWait: o.joinTimeoutMs,
    });
    for await (const m of it) {
      try {
        answers.push(parseHeartbeat(m.data));
      } catch {
        // A malformed answer is no member; its sender's heartbeats will be refused and reported.
      }
    }
  } catch (err) {
    // Nobody answered: the first process of the cluster.
    if ((err as Error).name !== 'NoRespondersError') throw err;
  }
  return answers.sort((a, b) => Number(b.group === MAIN) - Number(a.group === MAIN));
}

/**
 * Joins as a node's main process. Aborting `signal` closes the connection (without a goodbye:
 * the cluster has not heard of this node yet) and rejects with AbortError.
 */
export async function joinAsNode(mgr: ClusterManager, options: ClusterOptions): Promise<ClusterLink> {
  const o = resolveClusterOptions(options);
  const signal = signalOption(options.signal, 'ClusterOptions');
  throwIfAborted(signal, 'joinCluster');
  const nc = await abortable(open(o), signal, 'joinCluster', (late) => void late.close());
  const inc = randomId();
  const close = (): void => void nc.close().catch(() => undefined);
  signal?.addEventListener('abort', close, { once: true });
  try {
    return await abortable(
      start(mgr, nc, o, { node: o.node, inc, proc: randomId(), group: MAIN, main: true }),
      signal,
      'joinCluster',
      (link) => void link.close(),
    );
  } finally {
    signal?.removeEventListener('abort', close);
  }
}

/** Joins as one of a node's process groups (`group` is its name). */
export async function joinAsGroup(
  mgr: ClusterManager,
  config: GroupClusterConfig,
  group: string,
): Promise<ClusterLink> {
  if (!isToken(group) || group === MAIN) {
    throw new InvalidOption(
      `group '${group}' cannot join the cluster: a group's name must be letters, digits, '_' or '-', and not '${MAIN}'`,
    );
  }
  const o = resolveClusterOptions(config.options);
  const nc = await open(o);
  return start(mgr, nc, o, { node: o.node, inc: config.inc, proc: randomId(), group, main: false });
}

async function start(
  mgr: ClusterManager,
  nc: NatsConnection,
  o: ResolvedClusterOptions,
  place: Place,
): Promise<ClusterLink> {
  try {
    const maxBatchBytes = Math.min(o.maxBatchBytes, nc.info?.max_payload ?? o.maxBatchBytes);
    const link = new ClusterLink(mgr, nc, place, o, maxBatchBytes);
    link.subscribe();
    await nc.flush();
    const answers = await rollCall(link, o);
    if (place.main) {
      const holder = answers.find((h) => h.group === MAIN && h.node === place.node && h.inc !== place.inc);
      if (holder !== undefined) {
        throw new NodeNameTaken(
          `joinCluster: node name '${place.node}' is taken by a live node (incarnation ${holder.inc}) on ${describeServers(o)}`,
        );
      }
    }
    for (const h of answers)
      if (!(h.node === place.node && h.inc === place.inc && h.proc === place.proc)) link.learn(h);
    link.start();
    return link;
  } catch (err) {
    // Closed without a goodbye: a refused joiner must not make the cluster drop the live holder of its name.
    await nc.close().catch(() => undefined);
    throw err;
  }
}

/** The options a node's process groups get: what can be copied to another process. */
export function groupConfig(options: ClusterOptions, inc: number): GroupClusterConfig {
  const copy: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) if (typeof v !== 'function' && k !== 'signal') copy[k] = v;
  return { options: JSON.parse(JSON.stringify(copy)) as ClusterOptions, inc };
}

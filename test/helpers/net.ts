/**
 * Helpers for the network tests: a suite run once per transport (UDP, TCP,
 * and UDP with netcode under it, 'secure'), the options that listen and
 * connect over each, pumping
 * managers until something happens (always bounded), an inbox actor, a
 * connected server/client pair, peer-event recording, and sends that handle
 * backpressure. Nothing here registers a message class, so each test file
 * chooses its own packet types.
 */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecutionContext, SerialFn, TestFn } from 'ava';
import {
  ActorManager,
  BackpressureError,
  generateConnectToken,
  type Message,
  type NetOptions,
  type Reliability,
} from '../../ts/index.js';
import { Inbox, managerWithInbox } from './inbox.js';
import { isAlive, waitDead } from './process.js';

export { Inbox, isAlive, managerWithInbox as manager, waitDead };

/** A transport under test: 'secure' is UDP with netcode 1.02 under the peers (a token per connection). */
export type Transport = 'udp' | 'tcp' | 'secure';
export const TRANSPORTS: readonly Transport[] = ['udp', 'tcp', 'secure'];
/** The two UDP transports: tsage's reliability over plain datagrams and over netcode. */
export const UDP_TRANSPORTS: readonly Transport[] = ['udp', 'secure'];

/** The key and protocol id of every secure listener in the tests (their backends' secret). */
export const TEST_KEY = new Uint8Array(32).map((_, i) => (i * 37 + 11) & 0xff);
export const TEST_PROTOCOL = 0x7473_6167_6531_3032n;

/** The transport kind `transport` makes (a secure transport is UDP). */
export function kindOf(transport: Transport): 'udp' | 'tcp' {
  return transport === 'tcp' ? 'tcp' : 'udp';
}

/** `listen`'s options over `transport`: `o` plus the transport (and, secure, the key and protocol id). */
export function listenOptions(transport: Transport, o: NetOptions = {}): NetOptions {
  if (transport !== 'secure') return { ...o, transport };
  return { ...o, transport: 'udp', secure: { privateKey: TEST_KEY, protocolId: TEST_PROTOCOL } };
}

/** What a test's backend puts in a token besides the server address. */
export interface TokenSpec {
  clientId?: bigint;
  expireSeconds?: number;
  timeoutSeconds?: number;
  userData?: Uint8Array;
  protocolId?: bigint;
  privateKey?: Uint8Array;
}

let nextClientId = BigInt(process.pid) << 20n;

/** A connect token for the test listeners at `addresses` (`ip:port`), a fresh client id unless given. */
export function testToken(addresses: readonly string[], spec: TokenSpec = {}): Uint8Array {
  return generateConnectToken({
    privateKey: spec.privateKey ?? TEST_KEY,
    protocolId: spec.protocolId ?? TEST_PROTOCOL,
    clientId: spec.clientId ?? nextClientId++,
    serverAddresses: addresses,
    expireSeconds: spec.expireSeconds ?? 30,
    timeoutSeconds: spec.timeoutSeconds ?? 10,
    ...(spec.userData === undefined ? {} : { userData: spec.userData }),
  });
}

/** `ip:port`, `[ip]:port` for IPv6. */
export function addressOf(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * `connect`'s options to a listener at `host:port` over `transport`: `o` plus the address and
 * transport, or, secure, a fresh token for that address (made by `spec`).
 */
export function dialOptions(
  transport: Transport,
  host: string,
  port: number,
  o: NetOptions = {},
  spec: TokenSpec = {},
): NetOptions {
  if (transport !== 'secure') return { host, port, transport, ...o };
  const { host: _h, port: _p, transport: _t, ...rest } = o;
  return { ...rest, token: testToken([addressOf(host, port)], spec) };
}

/** Registers `body` as one test per transport (`test` or `test.serial`), titled `title [udp]`, `title [tcp]` and `title [secure]`. */
export function eachTransport(
  test: TestFn | SerialFn,
  title: string,
  body: (t: ExecutionContext, transport: Transport) => Promise<void>,
  transports: readonly Transport[] = TRANSPORTS,
): void {
  for (const tr of transports) test(`${title} [${tr}]`, (t) => body(t, tr));
}

/** Lets the event loop run (I/O, timers); now and then sleeps a millisecond so other processes get a core. */
async function yieldOnce(i: number): Promise<void> {
  if (i % 8 === 7) await sleep(1);
  else await new Promise((r) => setImmediate(r));
}

function list(mgrs: ActorManager | readonly ActorManager[]): readonly ActorManager[] {
  return mgrs instanceof ActorManager ? [mgrs] : mgrs;
}

/** Ticks every manager and yields until `cond` holds; rejects with `what` after `timeoutMs`. */
export async function pumpUntil(
  mgrs: ActorManager | readonly ActorManager[],
  cond: () => boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const ms = list(mgrs);
  const until = performance.now() + timeoutMs;
  for (let i = 0; ; i++) {
    for (const m of ms) m.tick();
    if (cond()) return;
    if (performance.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await yieldOnce(i);
  }
}

/** Ticks every manager for `ms` milliseconds (to show that something does not happen). */
export async function pumpFor(mgrs: ActorManager | readonly ActorManager[], ms: number): Promise<void> {
  const all = list(mgrs);
  const until = performance.now() + ms;
  for (let i = 0; performance.now() < until; i++) {
    for (const m of all) m.tick();
    await yieldOnce(i);
  }
}

/** Ticks managers and yields until a tick of one of them throws; resolves with what it threw. */
export async function pumpUntilThrows(
  mgrs: ActorManager | readonly ActorManager[],
  timeoutMs: number,
  what: string,
): Promise<unknown> {
  const ms = list(mgrs);
  const until = performance.now() + timeoutMs;
  for (let i = 0; ; i++) {
    try {
      for (const m of ms) m.tick();
    } catch (err) {
      return err;
    }
    if (performance.now() > until) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for a tick to throw (${what})`);
    }
    await yieldOnce(i);
  }
}

/** Ticks managers until `p` settles (bounded); resolves or rejects as `p` does. */
export async function pumpWhile<T>(
  mgrs: ActorManager | readonly ActorManager[],
  p: Promise<T>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  let settled = false;
  const watched = p.finally(() => {
    settled = true;
  });
  watched.catch(() => undefined);
  await pumpUntil(mgrs, () => settled, timeoutMs, what);
  return watched;
}

/** The peer events a manager emitted, in order. */
export interface PeerEvents {
  connected: string[];
  disconnected: [addr: string, reason: string][];
  errors: unknown[];
}

/** Starts recording a manager's 'peerConnected' and 'peerDisconnected' events (and 'error' if `errors`). */
export function recordEvents(mgr: ActorManager, errors = false): PeerEvents {
  const ev: PeerEvents = { connected: [], disconnected: [], errors: [] };
  mgr.on('peerConnected', (a: string) => ev.connected.push(a));
  mgr.on('peerDisconnected', (a: string, r: string) => ev.disconnected.push([a, r]));
  if (errors) mgr.on('error', (e: unknown) => ev.errors.push(e));
  return ev;
}

/** A connected server and client in this process. */
export interface Pair {
  server: ActorManager;
  client: ActorManager;
  serverInbox: Inbox;
  clientInbox: Inbox;
  serverEvents: PeerEvents;
  clientEvents: PeerEvents;
  /** The server's port. */
  port: number;
  /** The server as the client sees it (what `connect` resolved with). */
  serverAddr: string;
  /** The client as the server sees it (its 'peerConnected' address). */
  clientAddr: string;
}

export interface PairOptions {
  host?: string;
  server?: NetOptions;
  client?: NetOptions;
  /** What the client's token holds (secure only). */
  token?: TokenSpec;
}

/** Listens, connects a client (ticking the server meanwhile) and waits until both sides report the peer. */
export async function connectPair(
  t: ExecutionContext,
  transport: Transport,
  options: PairOptions = {},
): Promise<Pair> {
  const host = options.host ?? '127.0.0.1';
  const s = managerWithInbox(t);
  const c = managerWithInbox(t);
  const serverEvents = recordEvents(s.mgr);
  const clientEvents = recordEvents(c.mgr);
  await s.mgr.listen(listenOptions(transport, { host, port: 0, ...options.server }));
  const port = s.mgr.transport!.address.port;
  const serverAddr = await pumpWhile(
    s.mgr,
    c.mgr.connect(dialOptions(transport, host, port, options.client, options.token)),
    10_000,
    `a ${transport} connection to ${host}:${port}`,
  );
  await pumpUntil(
    [s.mgr, c.mgr],
    () => serverEvents.connected.length === 1,
    5000,
    'the server to see the client',
  );
  return {
    server: s.mgr,
    client: c.mgr,
    serverInbox: s.inbox,
    clientInbox: c.inbox,
    serverEvents,
    clientEvents,
    port,
    serverAddr,
    clientAddr: serverEvents.connected[0]!,
  };
}

/**
 * Sends `msg`, ticking `mgrs` and retrying while it throws BackpressureError
 * (bounded); returns how many times it was pushed back.
 */
export async function sendRetrying(
  from: ActorManager,
  mgrs: readonly ActorManager[],
  msg: Message,
  peer?: string,
  options?: { reliability?: Reliability; channel?: number },
): Promise<number> {
  for (let i = 0; i < 100_000; i++) {
    try {
      from.sendMessage(msg, peer, options);
      return i;
    } catch (err) {
      if (!(err instanceof BackpressureError)) throw err;
    }
    for (const m of mgrs) m.tick();
    await yieldOnce(i);
  }
  throw new Error('sendMessage stayed backpressured for 100,000 retries');
}

/** A port nobody listens on (bound once, then released). */
export async function freePort(transport: Transport, host = '127.0.0.1'): Promise<number> {
  if (transport !== 'tcp') {
    const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    await new Promise<void>((r) => s.bind(0, host, r));
    const { port } = s.address();
    await new Promise<void>((r) => s.close(() => r()));
    return port;
  }
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, host, r));
  const a = srv.address();
  const port = a !== null && typeof a === 'object' ? a.port : 0;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** FNV-1a over bytes, or over the UTF-16 code units of a string. */
export function fnv1a(data: string | ArrayLike<number>): number {
  let h = 0x811c9dc5;
  if (typeof data === 'string') {
    for (let i = 0; i < data.length; i++) h = Math.imul(h ^ data.charCodeAt(i), 0x01000193) >>> 0;
  } else {
    for (let i = 0; i < data.length; i++) h = Math.imul(h ^ (data[i]! & 0xff), 0x01000193) >>> 0;
  }
  return h;
}

/**
 * The ActorManager: pysage's manager for one process. It queues messages and
 * dispatches them on `tick()`, polls process groups and the network first,
 * then calls every actor's `update()`.
 */

import { aborted, signalOption, throwIfAborted } from './abort.js';
import { type GroupClusterConfig, groupConfig, joinAsGroup, joinAsNode } from './cluster/join.js';
import type { ClusterLink } from './cluster/link.js';
import type { ClusterNode } from './cluster/members.js';
import type { ClusterOptions } from './cluster/options.js';
import { Dispatcher, type DispatchStats } from './dispatcher.js';
import { InvalidOption, NotConnected } from './errors.js';
import { GroupHost } from './group/host.js';
import type { GroupLink } from './group/link.js';
import type { GroupHealth, GroupOptions } from './group/options.js';
import { MAIN_GROUP } from './group/wire.js';
import { isMessage, type Message } from './message.js';
import { clientBindAddress } from './net/address.js';
import type { NetTransport, PeerStats } from './net/base.js';
import {
  type ConditionerOptions,
  checkSameTransport,
  type NetOptions,
  resolveNetOptions,
  type SendOptions,
} from './net/options.js';
import { type PeerInfo, tokenHost } from './net/secure.js';
import { TcpTransport } from './net/tcp.js';
import { UdpTransport } from './net/udp.js';
import './debug.js';
import { DC } from './diagnostics.js';
import { type InspectOptions, Inspector, type InspectorHandle } from './inspect/server.js';
import { type Loop, type StartOptions, startLoop, type TickLoop } from './loop.js';
import type { Poller } from './poller.js';
import type { ClusterStats, NetStats } from './stats.js';

/** Counters kept by the manager (`mgr.stats`). */
export interface ManagerStats extends DispatchStats {
  /** Ticks run. */
  ticks: number;
  /** Duration of the last tick in milliseconds. */
  lastTickMs: number;
  /** Group processes restarted under a restart policy. */
  groupRestarts: number;
  /**
   * Group-to-group messages that could not be relayed: the destination group was gone, the
   * message was larger than it accepts, or its packet type is another schema on its ring or in
   * its own classes (each reported as `'undeliverable'`).
   */
  groupMessagesUndeliverable: number;
  /**
   * Messages a group's process sent in a tick it did not finish (it died, or was failed for an
   * invalid record), published early (a message larger than a ring record, or more than its ring
   * holds) and so held by main, then dropped: the restarted process handles that tick's input again.
   */
  groupMessagesDiscarded: number;
  /** The network transport's counters (datagrams, retransmissions, drops by reason...), once there is one. */
  network?: NetStats;
  /** The cluster's counters (batches, messages, loss, refusals by reason...), while in a cluster. */
  cluster?: ClusterStats;
}

export type { StartOptions, TickLoop } from './loop.js';

let singleton: ActorManager | undefined;

export class ActorManager extends Dispatcher {
  /** The name of the main process's group, as in pysage. */
  static readonly MAIN_GROUP = MAIN_GROUP;

  /** This manager's group: `ActorManager.MAIN_GROUP` in the main process. */
  groupName: string = MAIN_GROUP;
  private readonly pollers: Poller[] = [];
  private loop: Loop | undefined;
  private readonly wake = (): void => this.loop?.wake();

  declare readonly stats: ManagerStats;

  constructor() {
    const stats: ManagerStats = {
      ticks: 0,
      messagesDispatched: 0,
      lastTickMs: 0,
      groupRestarts: 0,
      groupMessagesUndeliverable: 0,
      groupMessagesDiscarded: 0,
    };
    super(stats);
    // An async handler's rejection goes to 'error' listeners while there are some, else to the next tick.
    this.onAsyncError = (err) => this.listenerCount('error') > 0 && this.emit('error', err);
    this.onWork = this.wake;
  }

  /** The process's manager, created on first use. `new ActorManager()` makes an isolated one. */
  static getSingleton(): ActorManager {
    singleton ??= new ActorManager();
    return singleton;
  }

  /** Whether this manager runs in the main process (not inside a group's process). */
  get isMainGroup(): boolean {
    return this.groupName === MAIN_GROUP;
  }

  /** @internal adds a poller; groups are added before the network so they are polled first */
  addPoller(p: Poller, first = false): void {
    if (first) this.pollers.unshift(p);
    else this.pollers.push(p);
    p.onArrival?.(this.wake);
    this.wake(); // what it holds already, or a poller that cannot wake: a waiting loop ticks now
  }

  /** @internal */
  removePoller(p: Poller): void {
    const i = this.pollers.indexOf(p);
    if (i >= 0) this.pollers.splice(i, 1);
  }

  /**
   * Polls groups, then the network, dispatches what was queued before this
   * tick, steps generator handlers, then calls `update()` on every actor by
   * priority. With `maxTimeMs`, at least one message is processed and the
   * rest stay queued in order. Returns whether the queue was flushed.
   */
  tick(maxTimeMs?: number): boolean {
    if (maxTimeMs !== undefined && !(typeof maxTimeMs === 'number' && maxTimeMs >= 0)) {
      throw new InvalidOption(`ActorManager.tick: maxTimeMs must be a number >= 0, got ${String(maxTimeMs)}`);
    }
    const start = performance.now();
    const deadline = maxTimeMs === undefined ? undefined : start + maxTimeMs;
    for (let i = 0; i < this.pollers.length; i++) this.pollers[i]!.poll(deadline);
    const flushed = this.dispatchQueued(deadline);
    this.stepGenerators();
    this.updateActors();
    for (let i = 0; i < this.pollers.length; i++) this.pollers[i]!.flush(flushed);
    // After the tick, so that a class its handlers made (and so registered) counts as known.
    this.checkSubscribedNames(
      this.groupLink !== undefined ||
        (this.groupHost?.names.length ?? 0) > 0 ||
        this.net !== undefined ||
        this.clusterLink !== undefined,
    );
    this.stats.ticks++;
    this.stats.lastTickMs = performance.now() - start;
    this.inspector?.sampleTick(this.stats.lastTickMs, this.getMessageCount());
    if (DC.tick.hasSubscribers) {
      DC.tick.publish({
        durationMs: this.stats.lastTickMs,
        dispatched: this.stats.messagesDispatched,
        queued: this.getMessageCount(),
      });
    }
    return flushed;
  }

  /**
   * Ticks on the event loop every `intervalMs` with drift compensation: tick
   * starts stay on a fixed grid; a late tick is not followed by a burst of
   * catch-up ticks. Ticks never overlap, and each is a separate timer
   * callback, so I/O runs between them. `intervalMs: 0` ticks as fast as there is work
   * and, idle, waits for an arrival when it can (see `ts/loop.ts`). An error thrown by a tick stops the
   * loop and is emitted as `'error'`, or thrown if nobody listens.
   */
  start(options: StartOptions = {}): TickLoop {
    if (this.loop?.running) throw new InvalidOption('ActorManager.start: already started');
    this.loop = startLoop(this, options);
    return this.loop;
  }

  /** @internal whether an idle `intervalMs: 0` loop may wait for a wake rather than tick on the next turn */
  mayWait(): boolean {
    return (
      !this.hasPendingWork && !this.updatesActors && this.pollers.every((p) => p.onArrival !== undefined)
    );
  }

  // ---- process groups ----

  private groupHost: GroupHost | undefined;
  private groupLink: GroupLink | undefined;

  /** @internal called by a group's process entry point */
  attachGroupLink(link: GroupLink): void {
    this.groupLink = link;
    this.addPoller(link, true);
  }

  private host(): GroupHost {
    if (!this.isMainGroup) {
      throw new InvalidOption(
        `process groups are added and removed by the main process, not by group '${this.groupName}'`,
      );
    }
    if (this.groupHost === undefined) {
      this.groupHost = new GroupHost(this);
      this.addPoller(this.groupHost, true);
    }
    return this.groupHost;
  }

  /**
   * Starts a group: a new OS process (with this process's Node flags) that
   * imports `module`, registers one instance of its default export (or
   * `options.exportName`) and ticks every `intervalMs`. Without a module the
   * group runs a {@link DefaultActor}. Resolves once the actor is constructed;
   * rejects with `DefaultActorFailed` (carrying the child's error) if it is not.
   * A relative path is resolved against the working directory; pass
   * `new URL('./x.js', import.meta.url)` to be independent of it. A module is found by the name
   * of its source or of what it compiles to (`x.ts` or `x.js`, whichever exists), so that
   * URL works under tsx and once compiled. `options.signal` cancels the start.
   */
  addProcessGroup(name: string, module?: string | URL, options?: GroupOptions): Promise<void> {
    return this.host().add(name, module, options);
  }

  /** Stops a group gracefully: it drains what was sent to it, runs a last tick and exits. */
  removeProcessGroup(name: string): Promise<void> {
    return this.host().remove(name);
  }

  /** Stops every group. */
  async clearProcessGroups(): Promise<void> {
    if (this.groupHost !== undefined) await this.groupHost.clear();
  }

  /** Names of the running groups (in a group's process: the other groups it can send to). */
  get groups(): string[] {
    if (this.groupLink !== undefined) return this.groupLink.groups;
    return this.groupHost?.names ?? [];
  }

  /**
   * The last address with an '@' given to queueMessageToGroup. It starts as '@' (which has one),
   * so that only an address that has an '@' can ever equal it.
   */
  private lastClusterAddress = '@';

  /**
   * Sends a message to a group's process (or, with `ActorManager.MAIN_GROUP`, to
   * the main process). It is packed now, so a value that cannot be packed
   * throws here; it arrives on the group's next tick with `sender` set to this
   * group's name. When the group's ring is full the message waits in a bounded
   * backlog; past `maxBacklog` this throws `BackpressureError` and the message
   * is not taken: tick (or await) and retry.
   */
  queueMessageToGroup(group: string, msg: Message): void {
    if (!isMessage(msg)) notAMessage();
    // A run of sends to one cluster address skips the search for its '@'.
    if (group === this.lastClusterAddress || (typeof group === 'string' && group.includes('@'))) {
      this.lastClusterAddress = group;
      const link = this.clusterLink;
      if (link === undefined) notInCluster(group);
      link.send(group, msg);
      return;
    }
    if (group === this.groupName) {
      this.queueMessage(msg);
      return;
    }
    if (this.groupLink !== undefined) {
      this.groupLink.send(group, msg);
      return;
    }
    this.host().send(group, msg);
  }

  /** Messages waiting for room in a group's ring. */
  groupBacklog(group: string): number {
    return this.host().backlog(group);
  }

  // ---- network ----

  private net: NetTransport | undefined;

  /** The network transport, once `listen` or `connect` made one: `transport.address` is where it is bound. */
  get transport(): NetTransport | undefined {
    return this.net;
  }

  private async openTransport(
    o: ReturnType<typeof resolveNetOptions>,
    listening: boolean,
  ): Promise<NetTransport> {
    if (this.net !== undefined) {
      checkSameTransport(this.net.kind, this.net.options, o);
      if (this.net instanceof UdpTransport) this.net.checkMode(o);
      return this.net;
    }
    let t: NetTransport;
    if (o.transport === 'tcp') {
      const tcp = new TcpTransport(this, o);
      if (listening) await tcp.listen();
      t = tcp;
    } else {
      const reach = o.token !== null ? tokenHost(o.token) : o.host;
      const bind = listening ? o : { ...o, port: 0, host: await clientBindAddress(reach) };
      t = await UdpTransport.open(this, bind, listening);
    }
    this.net = t;
    this.addPoller(t);
    this.stats.network = t.stats;
    return t;
  }

  /**
   * Listens for peers (UDP by default; `{ transport: 'tcp' }`; `{ wire: 'pysage' }` for pysage's
   * wire, and with `secure` too, over netcode). Emits `'peerConnected'` (address), `'peerDisconnected'` (address, reason) and
   * `'peerError'` (`{ peer, error }`: a fault in what a peer sent).
   */
  async listen(options: NetOptions = {}): Promise<void> {
    const o = resolveNetOptions(options, 'listen');
    const signal = signalOption(options.signal, 'NetOptions');
    if (this.net !== undefined)
      throw new InvalidOption('listen: the manager already has a transport; disconnect() first');
    throwIfAborted(signal, 'listen');
    const t = await this.openTransport(o, true);
    if (signal?.aborted) {
      if (this.net === t) await this.disconnect();
      throw aborted(signal, 'listen');
    }
  }

  /**
   * Connects to a listening manager; resolves with the server's address once the handshake is
   * done. The server must be ticking (`start()` or `tick()`): a listener answers handshakes from
   * its tick, so `connect()` times out against one that does not tick. `{ token }`: securely, to
   * the token's servers in order. Rejects with `ConnectFailed`, whose `reason` says why.
   */
  async connect(options: NetOptions): Promise<string> {
    const o = resolveNetOptions(options, 'connect');
    const signal = signalOption(options.signal, 'NetOptions');
    throwIfAborted(signal, 'connect');
    const opened = this.net === undefined;
    const t = await this.openTransport(o, false);
    try {
      if (o.token !== null) return await (t as UdpTransport).connectWithToken(o.token, signal);
      return await t.connectTo(o.host, o.port, signal);
    } catch (err) {
      // An aborted first connection closes the transport it opened, as if connect() had not been called.
      if (signal?.aborted && opened && this.net === t && t.peers.size === 0) await this.disconnect();
      throw err;
    }
  }

  /** Who the peer at `addr` is: `{ address }`, and on a secure listener its token's `clientId` and `userData`. */
  peerInfo(addr: string): PeerInfo | undefined {
    return this.net?.peerInfo(addr);
  }

  /**
   * Sends a message to a peer: a client's server when `peer` is omitted (or null), or the
   * address in a received message's `sender`. Packed now (a value that cannot
   * be packed throws here), sent on the next tick or turn of the event loop.
   * Throws `NotConnected` for an unknown peer or before `listen`/`connect`,
   * and `BackpressureError` when too much is waiting for that peer.
   */
  sendMessage(msg: Message, peer?: string | null, options?: SendOptions): void {
    if (!isMessage(msg)) throw new InvalidOption('sendMessage: expected a Message');
    if (this.net === undefined) throw new NotConnected('sendMessage: call listen() or connect() first');
    this.net.send(msg, peer ?? undefined, options);
  }

  /** Sends a message to every connected peer; returns how many. */
  broadcastMessage(msg: Message, options?: SendOptions): number {
    if (!isMessage(msg)) throw new InvalidOption('broadcastMessage: expected a Message');
    if (this.net === undefined) throw new NotConnected('broadcastMessage: call listen() or connect() first');
    return this.net.broadcast(msg, options);
  }

  /** Installs, changes or (null) removes the seeded link conditioner (UDP). */
  setLinkConditioner(options: ConditionerOptions | null): void {
    if (!(this.net instanceof UdpTransport))
      throw new NotConnected('setLinkConditioner: needs a UDP transport');
    this.net.setConditioner(options);
  }

  /** Tells every peer goodbye and closes the transport. */
  async disconnect(): Promise<void> {
    const t = this.net;
    if (t === undefined) return;
    this.net = undefined;
    this.removePoller(t);
    await t.close();
  }

  // ---- seeing it (docs/observability.md) ----

  private inspector: Inspector | undefined;

  /**
   * Serves the live inspector: a page at the returned `url` (loopback by default) that plots,
   * every second, messages per second by type, queue depth and tick time, each group's health
   * and ring fill, and each peer's RTT, loss and retransmissions. `tsage inspect <port>` shows
   * the same in a terminal. Calling it again returns the running one; `reset()` closes it.
   */
  async inspect(options: InspectOptions = {}): Promise<InspectorHandle> {
    if (this.inspector?.handle !== undefined) return this.inspector.handle;
    const inspector = new Inspector(this, options, () => {
      if (this.inspector === inspector) {
        this.inspector = undefined;
        this.typeCounts = undefined;
      }
    });
    this.inspector = inspector;
    try {
      return await inspector.listen();
    } catch (err) {
      this.inspector = undefined;
      throw err;
    }
  }

  /** Each connected network peer's RTT, loss and retransmissions (empty without a transport). */
  peerStats(): PeerStats[] {
    return this.net?.peerStats() ?? [];
  }

  /** Each process group's state, restarts and ring fill (empty in a group's process). */
  groupHealth(): GroupHealth[] {
    return this.groupHost?.health() ?? [];
  }

  // ---- cluster (docs/cluster.md) ----

  private clusterLink: ClusterLink | undefined;
  private clusterConfig: GroupClusterConfig | undefined;
  private clusterChange: Promise<unknown> = Promise.resolve();
  private clusterJoining = false;

  /**
   * Joins a NATS cluster as node `options.node`: `queueMessageToGroup('group@node', msg)`
   * and `('group@*', msg)` then reach other nodes, `publish(msg)` reaches every process
   * subscribed to its type, and `'nodeJoined'`/`'nodeLeft'` report nodes coming and going.
   * The node's process groups join too, with connections of their own. Rejects with
   * `ClusterConnectFailed` (naming the cause) or `NodeNameTaken`.
   */
  async joinCluster(options: ClusterOptions): Promise<void> {
    if (!this.isMainGroup) {
      throw new InvalidOption(`joinCluster: group '${this.groupName}' joins with its node's main process`);
    }
    if (this.clusterLink !== undefined || this.clusterJoining)
      throw new InvalidOption('joinCluster: already in a cluster (or joining); leaveCluster() first');
    this.clusterJoining = true;
    const link = await joinAsNode(this, options).finally(() => {
      this.clusterJoining = false;
    });
    this.clusterLink = link;
    this.addPoller(link);
    this.clusterConfig = groupConfig(options, link.place.inc);
    this.groupHost?.tellGroups({ type: 'cluster', config: this.clusterConfig });
  }

  /** @internal a process group joins (or, with null, leaves) as part of its node */
  joinClusterAsGroup(config: GroupClusterConfig | null): Promise<unknown> {
    this.clusterChange = this.clusterChange.then(async () => {
      if (this.clusterLink !== undefined) await this.leaveCluster();
      if (config === null) return;
      this.clusterLink = await joinAsGroup(this, config, this.groupName);
      this.addPoller(this.clusterLink);
    });
    return this.clusterChange;
  }

  /** @internal what a new process group needs to join the cluster, while in one */
  groupClusterConfig(): GroupClusterConfig | undefined {
    return this.clusterConfig;
  }

  /** Says goodbye to the cluster (others see `'nodeLeft'` with reason `'left'`) and closes the connection. */
  async leaveCluster(): Promise<void> {
    const link = this.clusterLink;
    if (link === undefined) return;
    this.clusterLink = undefined;
    this.removePoller(link);
    if (this.clusterConfig !== undefined) this.groupHost?.tellGroups({ type: 'cluster', config: null });
    this.clusterConfig = undefined;
    try {
      await link.close();
    } finally {
      delete this.stats.cluster;
    }
  }

  /**
   * Sends a message to every process in the cluster with an actor subscribed to its
   * type (by name or class), this one included (through NATS, like the others),
   * batched per type per tick. Throws
   * `BackpressureError` when too much waits to reach NATS.
   */
  publish(msg: Message): void {
    if (!isMessage(msg)) throw new InvalidOption('publish: expected a Message');
    if (this.clusterLink === undefined) throw new NotConnected('publish: call joinCluster() first');
    this.clusterLink.publish(msg);
  }

  /** This process's address in the cluster (`'main@sim-a'`, `'physics@sim-a'`), while in one. */
  get clusterAddress(): string | undefined {
    const p = this.clusterLink?.place;
    return p === undefined ? undefined : `${p.group}@${p.node}`;
  }

  /** Live nodes of the cluster (this one included) and the groups each runs; empty outside a cluster. */
  get nodes(): ClusterNode[] {
    return this.clusterLink?.nodes ?? [];
  }

  /** Drops every actor, subscription, queued message and running generator, and zeroes the counters. */
  override clear(): void {
    super.clear();
    this.stats.ticks = 0;
    this.stats.lastTickMs = 0;
    this.stats.groupRestarts = 0;
    this.stats.groupMessagesUndeliverable = 0;
    this.stats.groupMessagesDiscarded = 0;
    delete this.stats.network;
    delete this.stats.cluster;
  }

  /**
   * `await using mgr = new ActorManager()` resets the manager when the scope ends (Node 20 has
   * `Symbol.asyncDispose`; TypeScript 5.2 and later compile `await using`).
   */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.reset();
  }

  /** Stops the tick loop, stops groups, closes the network, and drops every actor and message. */
  async reset(): Promise<void> {
    this.loop?.stop();
    this.loop = undefined;
    await this.inspector?.close();
    const pollers = this.pollers.splice(0);
    this.groupHost = undefined;
    this.net = undefined;
    this.clusterLink = undefined;
    this.clusterConfig = undefined;
    // Everything is closed even if one close throws (say, a listener's error it reports); the first error is rethrown.
    let failure: unknown;
    for (const p of pollers) {
      try {
        await p.close();
      } catch (err) {
        failure ??= err;
      }
    }
    this.clear();
    if (failure !== undefined) throw failure;
  }
}

// The errors of queueMessageToGroup, made out of line: kept in it, their message building
// would take enough of V8's inlining budget that the cluster send is called, not inlined.
function notAMessage(): never {
  throw new InvalidOption('queueMessageToGroup: expected a Message');
}

function notInCluster(group: string): never {
  throw new NotConnected(`queueMessageToGroup('${group}'): call joinCluster() first`);
}

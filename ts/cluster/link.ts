/**
 * One process's place in the cluster: its NATS connection, its
 * subscriptions, its heartbeats, and the poller that moves what arrived into
 * the manager's queue and publishes each tick's batches. A node's main
 * process and each of its process groups have a link of their own.
 */
import { randomInt } from 'node:crypto';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { DC } from '../diagnostics.js';
import {
  BackpressureError,
  InvalidOption,
  NotConnected,
  PacketTypeError,
  type TsageError,
} from '../errors.js';
import type { EventSink, ManagerEvents } from '../events.js';
import { type Message, type MessageClass, type Schema, schemaOf } from '../message.js';
import type { Poller } from '../poller.js';
import type { ClusterStats } from '../stats.js';
import { type ClusterNode, type MemberEvent, Members } from './members.js';
import { isToken, type ResolvedClusterOptions, Subjects } from './options.js';
import { InboundQueue, Receiver } from './receive.js';
import { Router } from './route.js';
import { Outbox } from './send.js';
import {
  encodeHeartbeat,
  type Heartbeat,
  KIND_DIRECT,
  KIND_PUBLISH,
  KIND_QUEUE,
  parseAck,
  parseHeartbeat,
} from './wire.js';

/** What the link needs from the manager. */
export interface ClusterManager extends EventSink {
  queueMessage(msg: Message): boolean;
  subscribedTypeNames(): string[];
  readonly subscriptionVersion: number;
  readonly stats: { cluster?: ClusterStats };
}

/** A one-argument event the link reports at the end of its poll, in order. */
type Notice = {
  [K in
    | 'undeliverable'
    | 'messagesLost'
    | 'clusterError'
    | 'clusterDisconnected'
    | 'clusterReconnected'
    | 'clusterClosed']: [K, ...ManagerEvents[K]];
}[
  | 'undeliverable'
  | 'messagesLost'
  | 'clusterError'
  | 'clusterDisconnected'
  | 'clusterReconnected'
  | 'clusterClosed'];

/** Where this process is: its node, the node's incarnation, this process, its group token. */
export interface Place {
  node: string;
  inc: number;
  proc: number;
  group: string;
  /** Whether this is the node's main process (it answers roll calls and its heartbeats keep the node alive). */
  main: boolean;
}

/** Queue batches that may wait for their acknowledgement at once before sends push back. */
const MAX_UNACKED = 16_384;
/** Bytes of batches a tick takes from the inbound queue at most (at least one batch). */
const MAX_POLL_BYTES = 1024 * 1024;
/** Faults logged without a listener, at most once per kind and sender. */
const MAX_LOGGED = 1024;

/** A random non-zero u32. */
export function randomId(): number {
  return randomInt(1, 0xffffffff);
}

/** Bytes the client holds and has not yet written to its socket, plus what the socket holds. */
export function clientPendingBytes(nc: NatsConnection): number {
  // The client has no public figure for this; these are its protocol handler's outbound buffer and its socket.
  const p = (nc as unknown as { protocol?: any }).protocol;
  return (p?.outbound?.size?.() ?? 0) + (p?.transport?.socket?.writableLength ?? 0);
}

export class ClusterLink implements Poller {
  readonly subjects: Subjects;
  readonly members: Members;
  private readonly inbound: InboundQueue;
  private readonly receiver: Receiver;
  private readonly outbox: Outbox;
  private readonly typeSubs = new Map<string, Subscription>();
  private readonly router: Router;
  /** The last class sent and its schema: a run of messages of one class looks it up once. */
  private lastClass: unknown;
  private lastSchema: Schema | undefined;
  /** The client's pending bytes as last read, or -1 when it must be read again. */
  private clientPending = -1;
  private readonly maxPendingBytes: number;
  private subsVersion = -1;
  private readonly events: MemberEvent[] = [];
  private readonly notices: Notice[] = [];
  private readonly logged = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private flushScheduled = false;
  private closing = false;
  private wake: () => void = () => undefined;
  readonly stats: Record<string, number>;

  constructor(
    private readonly mgr: ClusterManager,
    readonly nc: NatsConnection,
    readonly place: Place,
    readonly options: ResolvedClusterOptions,
    maxBatchBytes: number,
  ) {
    this.subjects = new Subjects(options.prefix);
    this.members = new Members(place, options.nodeTimeoutMs - options.heartbeatMs, performance.now());
    this.inbound = new InboundQueue(options.maxInboundBytes);
    this.receiver = new Receiver(
      {
        queueMessage: (m) => mgr.queueMessage(m),
        publish: (s, d) => this.nc.publish(s, d),
        isAckSubject: (s) => this.subjects.isAck(s),
        fault: (sender, error) => this.fault(sender, error),
        lost: (info) => this.notices.push(['messagesLost', info]),
      },
      this.members,
      place,
      options.maxAnnouncementBytes,
      options.maxAnnouncementProperties,
    );
    this.outbox = new Outbox(
      place,
      (subject, data, reply) => {
        this.clientPending = -1;
        this.nc.publish(subject, data, reply === undefined ? undefined : { reply });
      },
      this.subjects.ack(place.node, place.proc),
      maxBatchBytes,
      () => performance.now(),
      (destination, count) => this.undeliverable(destination, count, 'its stream was replaced'),
    );
    this.router = new Router(this.members, this.outbox, this.subjects);
    this.maxPendingBytes = options.maxPendingBytes;
    this.stats = {
      heartbeatsSent: 0,
      heartbeatsReceived: 0,
      heartbeatsRejected: 0,
      acksReceived: 0,
      acksUnmatched: 0,
      messagesUnacknowledged: 0,
      inboundDropped: 0,
      messagesUndeliverable: 0,
      disconnects: 0,
      reconnects: 0,
    };
    // One object, read as `mgr.stats.cluster`: the counters of every part, live.
    const parts = [this.stats, this.outbox.stats, this.receiver.stats];
    const view: Record<string, number> = {};
    for (const part of parts) {
      for (const k of Object.keys(part)) {
        Object.defineProperty(view, k, { enumerable: true, get: () => (part as Record<string, number>)[k] });
      }
    }
    mgr.stats.cluster = view as unknown as ClusterStats;
  }

  /** Subscribes to everything this process listens on; the caller flushes before relying on them. */
  subscribe(): void {
    const s = this.subjects;
    const p = this.place;
    const on = (
      subject: string,
      kind: 'hb' | 'ack' | 1 | 2 | 3,
      token: string,
      queue?: string,
    ): Subscription =>
      this.nc.subscribe(subject, {
        queue,
        callback: (err, m) => {
          if (err !== null) return;
          if (!this.inbound.push(kind, token, m.data, m.reply, performance.now()))
            this.stats.inboundDropped!++;
          this.wake();
        },
      });
    on(s.heartbeat, 'hb', '');
    on(s.ack(p.node, p.proc), 'ack', '');
    on(s.direct(p.node, p.group), KIND_DIRECT, p.group);
    on(s.queue(p.group), KIND_QUEUE, p.group, p.group);
    // A joining process's roll call, answered with a heartbeat. The hello itself is not taken as
    // one: the joiner may yet find its name taken; it announces itself with its first heartbeat.
    this.nc.subscribe(s.hello, {
      callback: (err, m) => {
        if (err !== null || this.closing || m.reply === undefined) return;
        m.respond(encodeHeartbeat(this.heartbeat('hb')));
      },
    });
    this.syncTypes();
  }

  /** Starts the heartbeats (and the tail probes that ride on their timer). */
  start(): void {
    this.learn(this.heartbeat('hb'));
    this.sendHeartbeat('hb');
    this.timer = setInterval(() => {
      if (this.closing || this.nc.isClosed()) return;
      this.sendHeartbeat('hb');
      this.outbox.probe(this.options.heartbeatMs);
    }, this.options.heartbeatMs);
    this.timer.unref();
    void this.watchStatus();
    // The client gives up only when told to (maxReconnectAttempts) or when refused authentication again.
    void this.nc.closed().then((err) => {
      if (!this.closing) this.notices.push(['clusterClosed', err ?? undefined]);
      this.wake();
    });
  }

  heartbeat(t: Heartbeat['t']): Heartbeat {
    const p = this.place;
    return { t, node: p.node, inc: p.inc, proc: p.proc, group: p.group };
  }

  private sendHeartbeat(t: Heartbeat['t']): void {
    this.nc.publish(this.subjects.heartbeat, encodeHeartbeat(this.heartbeat(t)));
    this.stats.heartbeatsSent!++;
  }

  private async watchStatus(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === 'disconnect') {
        this.stats.disconnects!++;
        this.notices.push(['clusterDisconnected', s.server]);
      } else if (s.type === 'reconnect') {
        this.stats.reconnects!++;
        this.notices.push(['clusterReconnected', s.server]);
      }
      this.wake();
    }
  }

  /** Learns nodes from a roll call's answers (or a heartbeat that arrived `at`). */
  learn(h: Heartbeat, at = performance.now()): void {
    const n = this.events.length;
    this.members.heard(h, at, this.events);
    this.changed(n);
  }

  /** Live nodes and their groups. */
  get nodes(): ClusterNode[] {
    return this.members.list();
  }

  // ---- sending ----

  /** Packs a message for `'group@node'` or `'group@*'`. */
  send(address: string, msg: Message): void {
    const dest = this.router.resolve(address);
    const schema =
      msg.constructor === this.lastClass ? this.lastSchema! : this.schemaOf(msg, 'sent to another node');
    this.checkOpen('queueMessageToGroup');
    if (dest.kind === KIND_QUEUE && this.outbox.acks.size >= MAX_UNACKED)
      tooManyUnacked(this.outbox.acks.size);
    this.checkRoom('queueMessageToGroup');
    this.outbox.pack(dest, msg, schema);
    if (!this.flushScheduled) this.scheduleFlush();
  }

  /** Packs a message for every process with an actor subscribed to its type (this one too, through NATS). */
  publish(msg: Message): void {
    const schema = msg.constructor === this.lastClass ? this.lastSchema! : this.schemaOf(msg, 'published');
    if (!isToken(schema.name)) {
      throw new InvalidOption(
        `publish: the type name '${schema.name}' cannot be a subject token (letters, digits, '_' and '-')`,
      );
    }
    this.checkOpen('publish');
    this.checkRoom('publish');
    const d = this.outbox.destination(
      this.subjects.type(schema.name),
      KIND_PUBLISH,
      schema.name,
      0,
      undefined,
    );
    this.outbox.pack(d, msg, schema);
    this.scheduleFlush();
  }

  /** The schema of a message's class, checked once for being packable, and remembered for the next message of the class. */
  private schemaOf(msg: Message, what: string): Schema {
    const schema = packable(msg, what);
    this.lastClass = msg.constructor;
    this.lastSchema = schema;
    return schema;
  }

  private checkOpen(what: string): void {
    if (this.closing || this.nc.isClosed())
      throw new NotConnected(`${what}: the cluster connection is closed`);
  }

  private checkRoom(what: string): void {
    // The client's figure is read once per turn of the event loop and after each publish: in
    // between it can only have gone down (its socket drained), so a remembered one errs high.
    if (this.clientPending < 0) this.clientPending = clientPendingBytes(this.nc);
    const pending = this.outbox.unpublishedBytes + this.clientPending;
    if (pending > this.maxPendingBytes) tooManyPending(what, pending, this.maxPendingBytes);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.clientPending = -1;
      if (!this.closing && !this.nc.isClosed()) this.outbox.flush();
    });
  }

  private undeliverable(destination: string, count: number, reason: string): void {
    this.stats.messagesUndeliverable! += count;
    this.notices.push(['undeliverable', { via: 'cluster', destination, count, reason }]);
  }

  // ---- receiving ----

  /** NATS hands over what arrives in a callback: an idle `intervalMs: 0` loop waits for it. */
  onArrival(wake: () => void): void {
    this.wake = wake;
  }

  /** Moves what arrived into the manager's queue, then reports what changed. */
  poll(deadline: number | undefined): void {
    this.clientPending = -1;
    if (this.mgr.subscriptionVersion !== this.subsVersion) this.syncTypes();
    // A bounded amount per tick, as groups take a bounded part of their ring: a tick stays short
    // (the heartbeat timer runs between ticks, so a tick of seconds would look like a dead node),
    // and what one tick decodes dies young.
    let n = 0;
    let bytes = 0;
    for (let it = this.inbound.shift(); it !== undefined; it = this.inbound.shift()) {
      if (it.on === 'hb') this.onHeartbeat(it.data, it.at);
      else if (it.on === 'ack') this.onAck(it.data);
      else this.receiver.batch(it.on, it.token, it.data, it.reply);
      bytes += it.data.length;
      if (bytes >= MAX_POLL_BYTES) break;
      if (deadline !== undefined && (++n & 15) === 0 && performance.now() >= deadline) break;
    }
    // Silence is judged as of the oldest arrival still queued, not as of now: a process that fell
    // behind (a backlog past this tick's share, a long pause) has not yet read the heartbeats and
    // acknowledgements waiting in its queue, and must not take their senders as gone.
    const oldest = this.inbound.oldestArrival;
    if (oldest !== undefined) this.wake(); // left for the next tick
    const asOf = oldest ?? performance.now();
    const n0 = this.events.length;
    this.members.expire(asOf, this.events);
    this.changed(n0);
    for (const u of this.outbox.acks.expire(asOf, this.options.nodeTimeoutMs)) {
      this.stats.messagesUnacknowledged! += u.messages;
      this.notices.push([
        'messagesLost',
        { from: this.address, to: u.destination, lost: u.messages, reason: 'unacknowledged' },
      ]);
    }
    this.report();
  }

  private get address(): string {
    return `${this.place.group}@${this.place.node}`;
  }

  private onHeartbeat(data: Uint8Array, at: number): void {
    let h: Heartbeat;
    try {
      h = parseHeartbeat(data);
    } catch (err) {
      this.stats.heartbeatsRejected!++;
      this.fault(undefined, err as TsageError);
      return;
    }
    this.stats.heartbeatsReceived!++;
    this.learn(h, at);
  }

  private onAck(data: Uint8Array): void {
    let seq: number;
    try {
      seq = parseAck(data);
    } catch (err) {
      this.stats.acksUnmatched!++;
      this.fault(undefined, err as TsageError);
      return;
    }
    if (this.outbox.acks.acked(seq)) this.stats.acksReceived!++;
    else this.stats.acksUnmatched!++;
  }

  /**
   * Applies membership changes from `events[from]` on to the streams, at once: the batches
   * taken next, in this same poll, must see them. The events themselves are emitted by report().
   */
  private changed(from: number): void {
    for (let i = from; i < this.events.length; i++) {
      const e = this.events[i]!;
      if (e.type === 'nodeJoined') {
        this.receiver.nodeJoined(e.node.name, e.node.incarnation);
      } else if (e.type === 'nodeLeft') {
        this.receiver.nodeLeft(e.node.name, e.node.incarnation, e.reason);
        for (const [dest, n] of this.outbox.discardNode(e.node.name, e.reason === 'timeout')) {
          this.undeliverable(dest, n, 'its node left');
        }
      }
    }
  }

  /** Emits membership changes and notices, in order. A listener that throws throws out of the tick, as a handler does. */
  private report(): void {
    for (let e = this.events.shift(); e !== undefined; e = this.events.shift()) {
      if (e.type !== 'error' && DC.clusterMember.hasSubscribers) {
        const { type, ...rest } = e;
        DC.clusterMember.publish({ event: type, ...rest });
      }
      switch (e.type) {
        case 'nodeJoined':
          this.mgr.emit('nodeJoined', e.node);
          break;
        case 'nodeLeft':
          this.mgr.emit('nodeLeft', e.node, e.reason);
          break;
        case 'groupJoined':
          this.mgr.emit('groupJoined', e.address);
          break;
        case 'groupLeft':
          this.mgr.emit('groupLeft', e.address, e.reason);
          break;
        case 'error':
          this.fault(`main@${e.node}`, e.error);
          break;
      }
    }
    // Each notice was typed when pushed (Notice pairs a name with its payload); the union does not spread.
    const emit = this.mgr.emit.bind(this.mgr) as (event: Notice[0], arg: Notice[1]) => boolean;
    for (let n = this.notices.shift(); n !== undefined; n = this.notices.shift()) {
      if (n[0] === 'messagesLost') {
        if (DC.clusterLost.hasSubscribers) DC.clusterLost.publish(n[1]);
      } else if (n[0] !== 'undeliverable' && n[0] !== 'clusterError' && DC.clusterConnection.hasSubscribers) {
        DC.clusterConnection.publish({ event: n[0], [n[0] === 'clusterClosed' ? 'error' : 'server']: n[1] });
      }
      emit(n[0], n[1]);
    }
  }

  /** A fault of something received: emitted as `'clusterError'`, or logged once per kind and sender without a listener. */
  private fault(sender: string | undefined, error: TsageError): void {
    if (this.mgr.listenerCount('clusterError') > 0) {
      this.notices.push(['clusterError', { sender, error }]);
      return;
    }
    const key = `${error.code} ${sender ?? '?'}`;
    if (this.logged.has(key) || this.logged.size >= MAX_LOGGED) return;
    this.logged.add(key);
    console.warn(
      `tsage cluster: ${error.message} (further ${error.code} from ${sender ?? 'unknown senders'} are counted in mgr.stats.cluster, not logged)`,
    );
  }

  /** Subscribes to the published types some actor here subscribes to, and drops the rest. */
  private syncTypes(): void {
    this.subsVersion = this.mgr.subscriptionVersion;
    if (this.closing || this.nc.isClosed()) return;
    const want = new Set(this.mgr.subscribedTypeNames().filter(isToken));
    for (const [name, sub] of this.typeSubs) {
      if (want.has(name)) continue;
      sub.unsubscribe();
      this.typeSubs.delete(name);
      this.receiver.forgetType(name);
    }
    for (const name of want) {
      if (this.typeSubs.has(name)) continue;
      this.typeSubs.set(
        name,
        this.nc.subscribe(this.subjects.type(name), {
          callback: (err, m) => {
            if (err !== null) return;
            if (!this.inbound.push(KIND_PUBLISH, name, m.data, undefined, performance.now()))
              this.stats.inboundDropped!++;
            this.wake();
          },
        }),
      );
    }
  }

  /** End of tick: publishes the tick's batches. */
  flush(): void {
    if (this.outbox.pending && !this.closing && !this.nc.isClosed()) this.outbox.flush();
  }

  /** Says goodbye, publishes what was packed, and closes the connection. */
  async close(): Promise<void> {
    if (this.closing) return;
    if (!this.nc.isClosed()) {
      this.outbox.flush();
      this.sendHeartbeat('bye');
    }
    this.closing = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    for (const u of this.outbox.acks.drop()) this.stats.messagesUnacknowledged! += u.messages;
    if (!this.nc.isClosed()) {
      // A flush waits for the server's answer: bounded, since the server may be gone for good.
      let timer: NodeJS.Timeout | undefined;
      const gaveUp = new Promise<void>((r) => {
        timer = setTimeout(r, this.options.joinTimeoutMs);
      });
      try {
        await Promise.race([this.nc.flush(), gaveUp]);
      } catch {
        // Closed or disconnected meanwhile: what did not leave is found lost by its receivers.
      } finally {
        clearTimeout(timer);
      }
      await this.nc.close();
    }
  }
}

function packable(msg: Message, what: string): Schema {
  const schema = schemaOf(msg.constructor as MessageClass);
  if (schema.packetType === undefined) {
    throw new PacketTypeError(`${schema.name} has no static packetType: it cannot be ${what}`);
  }
  schema.codec();
  return schema;
}

// The sends' refusals, made out of line: built where they are checked, their messages would
// take enough of V8's inlining budget that the packing is called, not inlined, per message.
function tooManyUnacked(batches: number): never {
  throw new BackpressureError(
    `queueMessageToGroup: ${batches} batches to queues wait for acknowledgement; tick and retry`,
  );
}

function tooManyPending(what: string, pending: number, limit: number): never {
  if (DC.clusterBackpressure.hasSubscribers) DC.clusterBackpressure.publish({ pendingBytes: pending, limit });
  throw new BackpressureError(
    `${what}: ${pending} bytes wait to reach NATS (maxPendingBytes ${limit}); tick and retry`,
  );
}

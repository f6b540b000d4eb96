/**
 * What both network transports share: peers by address, per-peer schema
 * announcement and learning, packing messages straight into the transport's
 * outgoing buffer, decoding received ones into the manager's queue, the peer
 * events, and the rule for what peers send (`faults.ts`): a fault is the peer's,
 * reported as `'peerError'`, never thrown out of a tick.
 */
import { DC } from '../diagnostics.js';
import {
  BackpressureError,
  InvalidOption,
  NotConnected,
  PacketError,
  PacketTypeError,
  type TsageError,
} from '../errors.js';
import type { EventSink, ManagerEventName, ManagerEvents } from '../events.js';
import { type Message, type MessageClass, type Reliability, type Schema, schemaOf } from '../message.js';
import type { Poller } from '../poller.js';
import { describeSchema, newBuildBudget, SchemaTable } from '../schema-table.js';
import { Inbound } from './inbound.js';
import { CHANNELS, RELIABILITY_CODES, type ResolvedNetOptions, type SendOptions } from './options.js';
import { CTRL_SCHEMA, type DisconnectReason, type NetStats, type Peer } from './peer.js';
import { pysageParams } from './pysage.js';
import type { PeerInfo } from './secure.js';
import { Waiting } from './waiting.js';

export { CTRL_PING, CTRL_SCHEMA, type DisconnectReason, type NetStats, type Peer } from './peer.js';

/** One connected peer as the inspector shows it (`mgr.peerStats()`). */
export interface PeerStats {
  /** `ip:port`, as `msg.sender` holds it. */
  address: string;
  /** Smoothed round-trip time in ms; undefined before the first sample (and always for TCP). */
  rttMs: number | undefined;
  /** Packets sent to the peer so far, and of those, declared lost (UDP; 0 for TCP). */
  packetsSent: number;
  packetsLost: number;
  /** Reliable messages sent to the peer again (UDP; 0 for TCP). */
  retransmissions: number;
  /** Bytes waiting to be sent to the peer (in the transport, and for UDP in its queue and windows). */
  pendingBytes: number;
}

const utf8 = new TextEncoder();

/** A growable outgoing byte buffer. */
export interface Sink {
  u8: Uint8Array;
  dv: DataView;
  len: number;
}

export function newSink(size: number): Sink {
  const u8 = new Uint8Array(size);
  return { u8, dv: new DataView(u8.buffer), len: 0 };
}

/** What a transport needs from the manager. */
export interface NetManager extends EventSink {
  queueMessage(msg: Message): boolean;
}

export abstract class NetTransport implements Poller {
  readonly peers = new Map<string, Peer>();
  protected readonly byId = new Map<number, Peer>();
  /** The server a client connected to: `sendMessage` without a peer goes there. */
  protected server: Peer | undefined;
  /** Errors of the application met while servicing (a peer-event listener that threw): thrown by the next tick. */
  protected readonly errors: Error[] = [];
  /** The counters (`mgr.stats.network`): these, and the transport's own, filled in by its constructor. */
  readonly stats: NetStats & Record<string, number> = {
    messagesHeldForSchema: 0,
    messagesDroppedNoSchema: 0,
    messagesDroppedSchemaMismatch: 0,
    messagesUndeliverable: 0,
    peerErrors: 0,
    peerDecodeErrors: 0,
    peerSchemaErrors: 0,
    peerProtocolErrors: 0,
    peersDisconnectedForErrors: 0,
  };
  private flushScheduled = false;
  protected closed = false;
  /** What arrives from peers: decoding, schemas, messages waiting for one, faults (`inbound.ts`). */
  private readonly inbound: Inbound;

  constructor(
    protected readonly mgr: NetManager,
    readonly options: ResolvedNetOptions,
  ) {
    this.inbound = new Inbound(
      this.stats,
      options,
      {
        listeners: () => mgr.listenerCount('peerError'),
        notify: (event, payload) => this.notify(event, payload),
      },
      mgr,
    );
  }

  /** Which transport this is. */
  abstract readonly kind: 'udp' | 'tcp';
  /** The bound address. */
  abstract get address(): { address: string; port: number; family: string };
  /** Starts a connection; resolves with the peer's address once connected. Aborting `signal` undoes it. */
  abstract connectTo(host: string, port: number, signal?: AbortSignal): Promise<string>;
  /** Bytes before each message in the outgoing buffer. */
  protected abstract readonly headerBytes: number;
  /** The outgoing buffer for a peer. */
  protected abstract sinkFor(peer: Peer): Sink;
  /** Writes the header of a message of `len` bytes at `at`. */
  protected abstract writeHeader(
    sink: Sink,
    at: number,
    peer: Peer,
    channel: number,
    rel: number,
    len: number,
  ): void;
  /** Whether anything is packed and not yet handed to the transport. */
  protected abstract get hasOutgoing(): boolean;
  /** Moves what is packed out and what arrived in; processes events. */
  abstract service(): void;

  /** Who the peer at `addr` is (`{ address }` unless its transport knows more); undefined if there is none. */
  peerInfo(addr: string): PeerInfo | undefined {
    const peer = this.peers.get(String(addr));
    return peer === undefined ? undefined : { address: peer.addr };
  }

  /** Each connected peer's round trip, loss and retransmissions, as far as the transport knows them. */
  peerStats(): PeerStats[] {
    return [...this.peers.values()]
      .filter((p) => p.connected)
      .map((p) => ({
        address: p.addr,
        rttMs: undefined,
        packetsSent: 0,
        packetsLost: 0,
        retransmissions: 0,
        pendingBytes: p.pendingBytes,
      }));
  }
  abstract close(): Promise<void>;
  /** Closes the connection to a peer this side drops for its faults (it is then removed with reason 'error'). */
  protected abstract disconnectPeer(peer: Peer): void;

  protected addPeer(addr: string, id: number, connected: boolean): Peer {
    const peer: Peer = {
      addr,
      id,
      connected,
      announced: new Array(256).fill(false),
      table: new SchemaTable(() => `peer ${addr}`, {
        maxBytes: this.options.maxSchemaBytes,
        maxProperties: this.options.maxSchemaProperties,
      }),
      waiting: new Waiting(),
      waitsForBuild: false,
      pendingBytes: 0,
      errors: 0,
      dropping: false,
    };
    this.peers.set(addr, peer);
    this.byId.set(id, peer);
    return peer;
  }

  /**
   * Emits a peer event. A listener that throws does not cut the transport's work short
   * (a service half done would lose or repeat messages): its error is kept and thrown by
   * the next tick, or emitted as `'error'`, like other errors met while reading.
   */
  protected notify<K extends ManagerEventName>(event: K, ...args: ManagerEvents[K]): void {
    try {
      this.mgr.emit(event, ...args);
    } catch (err) {
      this.errors.push(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /**
   * Messages packed for a peer that can never reach it (it went away first): counted in
   * `messagesUndeliverable` and reported as one `'undeliverable'` event per peer, never dropped silently.
   */
  protected undeliverable(peer: string, reason: string, count: number): void {
    this.stats.messagesUndeliverable = (this.stats.messagesUndeliverable ?? 0) + count;
    this.notify('undeliverable', { via: 'network', peer, reason, count });
  }

  protected removePeer(peer: Peer, reason: DisconnectReason): void {
    if (this.peers.get(peer.addr) !== peer) return;
    this.peers.delete(peer.addr);
    this.byId.delete(peer.id);
    if (this.server === peer) this.server = undefined;
    this.inbound.forget(peer);
    // Peer events pair up: a peer that never connected (a failed attempt) is reported by its connect() rejecting.
    // A departure is reported at the end of the tick, after the messages that came before it are dispatched.
    if (peer.connected) this.departures.push([peer.addr, reason]);
  }

  protected peerConnected(peer: Peer): void {
    // A peer back from the same address before the old one's departure was reported: that goes first.
    if (this.departures.some((d) => d[0] === peer.addr)) this.reportDepartures();
    peer.connected = true;
    if (DC.netConnect.hasSubscribers) DC.netConnect.publish({ address: peer.addr, transport: this.kind });
    this.notify('peerConnected', peer.addr);
  }

  private resolvePeer(to: string | undefined, what: string): Peer {
    if (to === undefined) {
      if (this.server !== undefined) return this.server;
    } else {
      const peer = this.peers.get(String(to));
      if (peer !== undefined && !peer.dropping && peer.connected) return peer;
    }
    return this.noPeer(to, what);
  }

  /**
   * Why {@link resolvePeer} found no peer to send to, thrown. Apart from it, so that the bytes
   * of these errors do not count against what V8 inlines into the caller's sending loop.
   */
  private noPeer(to: string | undefined, what: string): never {
    if (to === undefined) {
      throw new NotConnected(
        `${what}: no peer given and not connected to a server (pass msg.sender or an address)`,
      );
    }
    const peer = this.peers.get(String(to));
    if (peer === undefined || peer.dropping)
      throw new NotConnected(`${what}: no connected peer '${String(to)}'`);
    throw new NotConnected(`${what}: peer '${peer.addr}' is still connecting (await connect() first)`);
  }

  /** A send's `channel << 3 | reliability`, validated for this wire. */
  private params(schema: Schema, opts: SendOptions | undefined): number {
    if (this.options.wire === 'pysage') return pysageParams(schema, opts, this.kind);
    return opts === undefined ? classParams(schema) : sendParams(schema.cls, opts);
  }

  /** Packs a message for one peer (sent on the next service). */
  send(msg: Message, to: string | undefined, opts: SendOptions | undefined): void {
    const peer = this.resolvePeer(to, 'sendMessage');
    const schema = packable(msg);
    const params = this.params(schema, opts);
    this.pack(peer, schema, msg, params >> 3, params & 7);
    this.scheduleFlush();
  }

  /** Packs a message for every connected peer. Returns how many. */
  broadcast(msg: Message, opts: SendOptions | undefined): number {
    const schema = packable(msg);
    const params = this.params(schema, opts);
    const channel = params >> 3;
    const rel = params & 7;
    // All or nothing: if one peer pushes back, no peer takes it, so retrying the broadcast sends no duplicates.
    for (const peer of this.peers.values())
      if (peer.connected && !peer.dropping) this.checkRoom(peer, 'broadcastMessage');
    let n = 0;
    for (const peer of this.peers.values()) {
      if (!peer.connected || peer.dropping) continue;
      this.pack(peer, schema, msg, channel, rel);
      n++;
    }
    this.scheduleFlush();
    return n;
  }

  private checkRoom(peer: Peer, what: string): void {
    if (peer.pendingBytes > this.options.maxPendingBytes) {
      if (DC.netBackpressure.hasSubscribers) {
        DC.netBackpressure.publish({
          peer: peer.addr,
          pendingBytes: peer.pendingBytes,
          limit: this.options.maxPendingBytes,
        });
      }
      throw new BackpressureError(
        `${what}: ${peer.pendingBytes} bytes are waiting for peer ${peer.addr} (maxPendingBytes ${this.options.maxPendingBytes}); tick and retry`,
      );
    }
  }

  private pack(peer: Peer, schema: Schema, msg: Message, channel: number, rel: number): void {
    this.checkRoom(peer, 'sendMessage');
    const pt = schema.packetType!;
    // pysage's wire carries its packets and nothing else: no announcement, ever.
    if (!peer.announced[pt] && this.options.wire === 'tsage') {
      // Reliable and ordered on the message's channel, so an ordered message never overtakes its schema.
      const json = utf8.encode(JSON.stringify(describeSchema(schema)));
      if (json.length + 1 > this.options.maxMessageBytes) {
        throw new PacketError(
          `${schema.name}: its schema announcement is ${json.length + 1} bytes, more than maxMessageBytes (${this.options.maxMessageBytes})`,
        );
      }
      const bytes = new Uint8Array(json.length + 1);
      bytes[0] = CTRL_SCHEMA;
      bytes.set(json, 1);
      this.packBytes(peer, bytes, channel, RELIABILITY_CODES['reliable-ordered']);
      peer.announced[pt] = true;
    }
    const sink = this.sinkFor(peer);
    const codec = schema.codec();
    const h = this.headerBytes;
    const max = this.messageLimit;
    for (;;) {
      const at = sink.len;
      const body = at + h;
      if (body < sink.u8.length) {
        sink.u8[body] = pt;
        const e = codec.encode(msg, sink.u8, sink.dv, body + 1, Math.min(sink.u8.length, body + max));
        if (e >= 0) {
          this.writeHeader(sink, at, peer, channel, rel, e - body);
          sink.len = e;
          peer.pendingBytes += e - at;
          return;
        }
        if (sink.u8.length - body >= max)
          throw new PacketError(`${schema.name}: packs to more than ${this.limitName}`);
      }
      grow(sink, Math.max(sink.u8.length * 2, body + 1024));
    }
  }

  /** The most bytes one packed message may have. */
  protected get messageLimit(): number {
    return this.options.maxMessageBytes;
  }

  /** What {@link messageLimit} is, for errors. */
  protected get limitName(): string {
    return `maxMessageBytes (${this.options.maxMessageBytes})`;
  }

  /** Packs ready-made payload bytes for a peer. */
  protected packBytes(peer: Peer, bytes: Uint8Array, channel: number, rel: number): void {
    const sink = this.sinkFor(peer);
    const need = sink.len + this.headerBytes + bytes.length;
    if (need > sink.u8.length) grow(sink, Math.max(need, sink.u8.length * 2));
    const at = sink.len;
    sink.u8.set(bytes, at + this.headerBytes);
    this.writeHeader(sink, at, peer, channel, rel, bytes.length);
    sink.len = need;
    peer.pendingBytes += need - at;
  }

  /**
   * Handles one received payload from a peer (`reliable`: it was sent in a reliable mode):
   * see `inbound.ts`. What is wrong with it is the peer's fault; later payloads still arrive.
   */
  protected receive(peer: Peer, u8: Uint8Array, dv: DataView, p: number, end: number, reliable = true): void {
    this.inbound.receive(peer, u8, dv, p, end, reliable);
  }

  /**
   * A fault of `peer` (see `faults.ts`): counted and reported; the peer is dropped at the end
   * of this service if it must be. `gone`: the protocol below already disconnected it.
   */
  protected fault(peer: Peer, error: TsageError, violation: boolean, gone = false): void {
    this.inbound.fault(peer, error, violation, gone);
  }

  /** Transports call it as a service begins: a new budget for building classes from announcements. */
  protected beginService(): void {
    newBuildBudget();
  }

  /**
   * Transports call it as a service ends: messages that waited too long for their schema
   * expire, and the peers dropped for their faults are disconnected.
   */
  protected settlePeers(): void {
    for (const peer of this.inbound.settle(this.peers.values())) {
      if (this.peers.get(peer.addr) !== peer) continue;
      this.disconnectPeer(peer);
      this.removePeer(peer, 'error');
    }
  }

  /** Publishes soon even if nobody ticks. */
  protected scheduleFlush(): void {
    if (this.flushScheduled || this.closed) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (!this.closed) this.service();
    });
  }

  poll(): void {
    if (this.closed) return;
    this.service();
    this.throwErrors();
  }

  protected throwErrors(): void {
    if (this.errors.length === 0) return;
    const errs = this.errors.splice(0);
    const [first] = errs;
    if (this.mgr.listenerCount('error') > 0) {
      for (const e of errs) this.mgr.emit('error', e);
      return;
    }
    throw first;
  }

  /** Departures seen since the last tick ended: [address, reason]. */
  private departures: [string, DisconnectReason][] = [];

  /** Emits the departures seen so far, in order (one at a time, so a listener that closes the transport cannot reorder them). */
  protected reportDepartures(): void {
    for (let d = this.departures.shift(); d !== undefined; d = this.departures.shift()) {
      if (DC.netDisconnect.hasSubscribers)
        DC.netDisconnect.publish({ address: d[0], reason: d[1], transport: this.kind });
      this.notify('peerDisconnected', d[0], d[1]);
    }
  }

  /**
   * End of tick: reports the peers that left, once the tick has dispatched everything
   * queued (their last messages among it; a tick cut short by its time limit leaves them
   * for a later one), then sends what was packed (polling already serviced timers this tick).
   */
  flush(queueFlushed = true): void {
    if (queueFlushed) this.reportDepartures();
    if (!this.closed && this.hasOutgoing) this.service();
  }
}

function packable(msg: Message): Schema {
  const schema = schemaOf(msg.constructor as MessageClass);
  if (schema.packetType === undefined) {
    throw new PacketTypeError(`${schema.name} has no static packetType: it cannot be sent over the network`);
  }
  schema.codec();
  return schema;
}

/** A class's own channel and reliability, validated once per class and kept in its schema: `channel << 3 | reliability`. */
function classParams(schema: Schema): number {
  if (schema.sendParams < 0) schema.sendParams = sendParams(schema.cls, undefined);
  return schema.sendParams;
}

/** Channel and reliability of one send, validated: `channel << 3 | reliability`. */
function sendParams(cls: MessageClass, opts: SendOptions | undefined): number {
  const reliability: Reliability = opts?.reliability ?? cls.reliability ?? 'reliable-ordered';
  const rel = RELIABILITY_CODES[reliability];
  if (rel === undefined) {
    throw new InvalidOption(
      `${cls.name}: reliability must be one of ${Object.keys(RELIABILITY_CODES).join(', ')}, got ${String(reliability)}`,
    );
  }
  const channel = opts?.channel ?? cls.channel ?? 0;
  if (!(Number.isInteger(channel) && channel >= 0 && channel < CHANNELS)) {
    throw new InvalidOption(
      `${cls.name}: channel must be an integer from 0 to ${CHANNELS - 1}, got ${String(channel)}`,
    );
  }
  return (channel << 3) | rel;
}

function grow(sink: Sink, size: number): void {
  const u8 = new Uint8Array(size);
  u8.set(sink.u8.subarray(0, sink.len));
  sink.u8 = u8;
  sink.dv = new DataView(u8.buffer);
}

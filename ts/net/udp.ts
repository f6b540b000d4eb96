/**
 * The UDP transport: reliability, ordering, acknowledgement and retransmission
 * run in the Rust addon (docs/net-protocol.md). Messages are packed into one
 * send buffer; each service is a single native call that queues them, runs the
 * socket and the protocol, and hands back events in one out buffer.
 */
import { randomFillSync } from 'node:crypto';
import { aborted, throwIfAborted } from '../abort.js';
import { DC } from '../diagnostics.js';
import { InvalidOption, ListenFailed, NotConnected, PeerProtocolError, TsageError } from '../errors.js';
import { type NetConditionerConfig, type NetLayout, native, netLayout, PEER_STAT_FIELDS } from '../native.js';
import { formatAddr, resolveHost } from './address.js';
import {
  CTRL_SCHEMA,
  type DisconnectReason,
  type NetManager,
  NetTransport,
  newSink,
  type Peer,
  type PeerStats,
  type Sink,
} from './base.js';
import { type ConditionerOptions, type ResolvedNetOptions, validateConditioner } from './options.js';
import { connectFailed, firstTokenServer, nativeSecure, type PeerInfo } from './secure.js';

/** The counters of handshakes a listener refused, and the reason each is published under. */
const REFUSAL_COUNTERS: readonly [string, string][] = [
  ['droppedPeerCap', 'peer-cap'],
  ['droppedBadCookie', 'bad-cookie'],
  ['droppedExpiredCookie', 'expired-cookie'],
  ['refusedTokenRequired', 'token-required'],
  ['refusedNotSecure', 'not-secure'],
  // A secure listener's, netcode's refusals of a connection request (docs/security.md).
  ['netcodeDroppedServerFull', 'server-full'],
  ['netcodeDroppedRequestTokenExpired', 'token-expired'],
  ['netcodeDroppedRequestTokenUndecryptable', 'token-undecryptable'],
  ['netcodeDroppedRequestWrongProtocol', 'wrong-protocol'],
  ['netcodeDroppedRequestBadVersion', 'bad-version'],
  ['netcodeDroppedRequestServerNotInToken', 'other-server'],
  ['netcodeDroppedRequestTokenUsedElsewhere', 'token-in-use'],
  ['netcodeDroppedClientIdAlreadyConnected', 'client-connected'],
];

/** Where each field of `netPeerStats` is in a peer's row (the addon's order, checked by netLayout()). */
const PS = Object.fromEntries(PEER_STAT_FIELDS.map((f, i) => [f, i])) as Record<
  (typeof PEER_STAT_FIELDS)[number],
  number
>;

/** Datagrams read per native call: enough to keep up, few enough that one poll's messages die young. */
const MAX_DATAGRAMS = 512;
/** What an `'undeliverable'` event says for each reason the addon gives (netLayout().refusalReasons). */
const REFUSALS: Readonly<Record<string, string>> = {
  gone: 'the peer is gone',
  'too-large': 'it is too large',
  invalid: 'it was refused',
};

/**
 * 64 random bits for the addon's seed (it keys the handshake cookies and picks connection ids and
 * nonces), passed as the float64 with that bit pattern; NaNs are redrawn, as engines may canonicalise them.
 */
function randomSeed(): number {
  const f = new Float64Array(1);
  do {
    randomFillSync(f);
  } while (Number.isNaN(f[0]));
  return f[0]!;
}

function conditionerConfig(c: ConditionerOptions): NetConditionerConfig {
  return {
    loss: c.loss ?? 0,
    duplicate: c.duplicate ?? 0,
    reorder: c.reorder ?? 0,
    delayMs: c.delayMs ?? 0,
    jitterMs: c.jitterMs ?? 0,
    seed: c.seed ?? 1,
  };
}

/** What a fault event from the protocol says (its kinds: netLayout().faultKinds). */
function stallMessage(addr: string, kind: string | undefined, detail: number, ms: number): string {
  switch (kind) {
    case 'gap':
      return `peer ${addr} left reliable id ${detail} missing for ${ms} ms while sending later ones (a gap it never filled)`;
    case 'channel':
      return `peer ${addr} left reliable-ordered channel ${detail} waiting for its next message for ${ms} ms`;
    default:
      return `peer ${addr} left a fragmented reliable message (reliable id ${detail}) incomplete for ${ms} ms`;
  }
}

/** Closes the socket of a transport collected without `close()` (a backstop: `close()` also tells peers goodbye). */
const sockets = new FinalizationRegistry<number>((handle) => native().netClose(handle));

export class UdpTransport extends NetTransport {
  readonly kind = 'udp' as const;
  /** Whether netcode 1.02 runs under the peers (a `secure` listener, or a client with a token). */
  readonly secure: boolean;
  /** Who each peer of a secure listener is, read when it connects. */
  private readonly identities = new WeakMap<Peer, PeerInfo>();
  /** The addon's layouts (send entries, events, result slots), read once. */
  private readonly layout: NetLayout = netLayout();
  private readonly entry = this.layout.send;
  protected readonly headerBytes = this.entry.header;
  private handle: number;
  private local: { address: string; port: number; family: string };
  private readonly sink: Sink = newSink(64 * 1024);
  /** Events out of one service: room for a full read of MAX_DATAGRAMS datagrams of 1200 bytes, so one call hands over all. */
  private out = new Uint8Array(1024 * 1024);
  private outView = new DataView(this.out.buffer);
  /** A service's result: whether more events wait, the send bytes left waiting, the counters. */
  private readonly result = new Float64Array(this.layout.result.length);
  private readonly connecting = new Map<
    number,
    { resolve: (addr: string) => void; reject: (e: Error) => void }
  >();
  private pump: NodeJS.Timeout | undefined;
  /** Peers that went away during this service: id to address, and how far the send buffer reached then (entries before that were packed for them). */
  private readonly gone = new Map<number, { addr: string; at: number }>();
  /** Messages of this service that can never be sent, per peer id: [id, address, why, count]. */
  private readonly losses: [number, string, string, number][] = [];

  private constructor(mgr: NetManager, options: ResolvedNetOptions, handle: number) {
    super(mgr, options);
    this.handle = handle;
    this.secure = options.secure !== null || options.token !== null;
    sockets.register(this, handle, this);
    const a = native().netLocalAddress(handle);
    const i = a.lastIndexOf(':');
    const ip = a.slice(0, i).replace(/^\[|\]$/g, '');
    this.local = { address: ip, port: Number(a.slice(i + 1)), family: ip.includes(':') ? 'IPv6' : 'IPv4' };
    for (const n of this.layout.counters) this.stats[n] = 0;
    if (this.secure) for (const n of this.layout.secureCounters) this.stats[n] = 0;
    if (options.conditioner) this.setConditioner(options.conditioner);
  }

  /** Binds a socket; `accept` says whether incoming handshakes are answered (a listener). */
  static async open(mgr: NetManager, options: ResolvedNetOptions, accept: boolean): Promise<UdpTransport> {
    const ip = await resolveHost(options.host);
    const config = {
      mtu: options.mtu,
      maxMessageSize: options.maxMessageBytes,
      maxPeers: options.maxPeers,
      maxPeersPerIp: options.maxPeersPerIp,
      maxBufferedBytes: options.maxBufferedBytes,
      timeoutMs: options.timeoutMs,
      keepaliveMs: options.keepaliveMs,
      acceptIncoming: accept,
      pysageWire: options.wire === 'pysage',
    };
    // Outside the try: a missing addon is a NativeLoadError, not a failure to bind.
    const n = native();
    let handle: number;
    try {
      const secure = options.secure !== null || options.token !== null ? nativeSecure(options.secure) : null;
      handle = n.netOpen(ip, options.port, config, randomSeed(), secure);
    } catch (err) {
      throw new ListenFailed(`cannot bind UDP ${formatAddr(ip, options.port)}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return new UdpTransport(mgr, options, handle);
  }

  get address(): { address: string; port: number; family: string } {
    return { ...this.local };
  }

  private peerOut = new Float64Array(PEER_STAT_FIELDS.length * 16);

  /** Each connected peer's RTT, loss and retransmissions, from the protocol (one native call). */
  override peerStats(): PeerStats[] {
    if (this.closed) return [];
    const stride = PEER_STAT_FIELDS.length;
    let n = native().netPeerStats(this.handle, this.peerOut);
    if (n * stride > this.peerOut.length) {
      this.peerOut = new Float64Array(n * stride * 2);
      n = native().netPeerStats(this.handle, this.peerOut);
    }
    const f = this.peerOut;
    const out: PeerStats[] = [];
    for (let i = 0; i < n && (i + 1) * stride <= f.length; i++) {
      const o = i * stride;
      const peer = this.byId.get(f[o + PS.peer]!);
      if (peer === undefined) continue;
      out.push({
        address: peer.addr,
        rttMs: f[o + PS.srttMs]! < 0 ? undefined : f[o + PS.srttMs]!,
        packetsSent: f[o + PS.packetsSent]!,
        packetsLost: f[o + PS.packetsLost]!,
        retransmissions: f[o + PS.retransmissions]!,
        pendingBytes: peer.pendingBytes + f[o + PS.queuedBytes]!,
      });
    }
    return out;
  }

  /** Installs, changes or (null) removes the seeded link conditioner on outgoing datagrams. */
  setConditioner(c: ConditionerOptions | null): void {
    const v = validateConditioner(c);
    native().netSetConditioner(this.handle, v === null ? null : conditionerConfig(v));
  }

  async connectTo(host: string, port: number, signal?: AbortSignal): Promise<string> {
    const ip = await resolveHost(host);
    throwIfAborted(signal, 'connect');
    const id = native().netConnect(this.handle, ip, port);
    const existing = this.byId.get(id);
    if (existing?.connected) return existing.addr;
    if (existing === undefined) this.addPeer(formatAddr(ip, port), id, false);
    return this.established(id, signal);
  }

  /** Starts a secure connection with a connect token (to its servers in order); resolves with the server's address. */
  async connectWithToken(token: Uint8Array, signal?: AbortSignal): Promise<string> {
    throwIfAborted(signal, 'connect');
    const first = firstTokenServer(token) ?? "the token's first server";
    let id: number;
    try {
      id = native().netConnectToken(this.handle, token);
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'ERR_TSAGE_INVALID_TOKEN') throw err;
      throw Object.assign(connectFailed(first, 'invalid connect token', true), { cause: err });
    }
    this.addPeer(first, id, false);
    return this.established(id, signal);
  }

  /** Waits for the connection attempt `id` to complete (servicing meanwhile), or for `signal`. */
  private async established(id: number, signal: AbortSignal | undefined): Promise<string> {
    const done = new Promise<string>((resolve, reject) => this.connecting.set(id, { resolve, reject }));
    // Aborting forgets the half-open peer (the server, if it answered, sees a goodbye or a timeout).
    const onAbort = (): void => {
      const c = this.connecting.get(id);
      if (c === undefined || this.closed) return;
      this.connecting.delete(id);
      native().netDisconnect(this.handle, id);
      const peer = this.byId.get(id);
      if (peer !== undefined) this.removePeer(peer, 'local');
      c.reject(aborted(signal!, 'connect'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    this.startPump();
    try {
      const addr = await done;
      // The peer as it is now: a token's attempt may have moved on to another of its servers.
      this.server ??= this.byId.get(id);
      return addr;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      if (this.connecting.size === 0) this.stopPump();
    }
  }

  /** Refuses options of the other mode (a token for a plain transport, a plain dial for a secure one). */
  checkMode(o: ResolvedNetOptions): void {
    if (this.secure === (o.secure !== null || o.token !== null)) return;
    const has = this.secure ? 'a secure' : 'an ordinary (not secure)';
    throw new InvalidOption(`the manager already has ${has} UDP transport; disconnect() first`);
  }

  override peerInfo(addr: string): PeerInfo | undefined {
    const peer = this.peers.get(String(addr));
    if (peer === undefined) return undefined;
    return this.identities.get(peer) ?? { address: peer.addr };
  }

  /** Services the socket on a timer while a handshake is under way, so `await connect()` needs no ticking. */
  private startPump(): void {
    this.pump ??= setInterval(() => {
      try {
        this.service();
      } catch (err) {
        for (const c of this.connecting.values()) c.reject(err as Error);
        this.connecting.clear();
      }
    }, 2);
  }

  private stopPump(): void {
    if (this.pump !== undefined) clearInterval(this.pump);
    this.pump = undefined;
  }

  protected sinkFor(): Sink {
    return this.sink;
  }

  /** On pysage's wire a message is one datagram (secure: one payload packet): no larger than the MTU allows. */
  protected override get messageLimit(): number {
    const max = this.options.maxMessageBytes;
    if (this.options.wire !== 'pysage') return max;
    const sl = this.layout.secureLink;
    return Math.min(
      max,
      this.secure ? Math.min(this.options.mtu, sl.maxDatagram) - sl.framing : this.options.mtu,
    );
  }

  protected override get limitName(): string {
    if (this.options.wire !== 'pysage') return super.limitName;
    const mtu = this.options.mtu;
    if (!this.secure) return `one datagram holds on the pysage wire (mtu ${mtu} bytes)`;
    const sl = this.layout.secureLink;
    return `one payload packet holds on the pysage wire over netcode (${this.messageLimit} bytes: mtu ${mtu}, at most ${sl.maxDatagram}, less ${sl.framing} of netcode's framing)`;
  }

  protected get hasOutgoing(): boolean {
    return this.sink.len !== 0;
  }

  protected writeHeader(sink: Sink, at: number, peer: Peer, channel: number, rel: number, len: number): void {
    const e = this.entry;
    const dv = sink.dv;
    dv.setUint32(at + e.peer, peer.id, true);
    sink.u8[at + e.channel] = channel;
    sink.u8[at + e.reliability] = rel;
    // A schema announcement is sent like a message but is not one: the addon does not count it in refusals.
    dv.setUint16(at + e.flags, sink.u8[at + e.header] === CTRL_SCHEMA ? e.control : 0, true);
    dv.setUint32(at + e.length, len, true);
  }

  service(): void {
    if (this.closed) return;
    this.beginService();
    const n = native();
    const res = this.result;
    const { kept, more, counters } = this.layout.result;
    const sendLen = this.sink.len;
    // The addon takes what the send windows allow and moves the rest to the front of the buffer;
    // what it left is res[kept] (all of it if the call fails before taking the batch).
    res[kept] = sendLen;
    let w: number;
    try {
      w = n.netService(this.handle, this.sink.u8, sendLen, this.out, MAX_DATAGRAMS, res);
    } finally {
      this.sink.len = res[kept]!;
    }
    const settled = this.sink.len;
    this.drain(w);
    // Each call hands out whole events as far as `out` holds them; go on until the addon has none left.
    for (let round = 0; res[more] !== 0; round++) {
      if (round > 1_000_000)
        throw new TsageError('ERR_TSAGE_NATIVE', 'netService kept reporting more events');
      this.drain(n.netService(this.handle, this.sink.u8, 0, this.out, MAX_DATAGRAMS, res));
    }
    // Peers dropped for their faults go now, so that what was packed for them is counted below.
    this.settlePeers();
    if (this.gone.size !== 0) this.dropGone(settled);
    const names = this.layout.counters;
    for (let i = 0; i < names.length; i++) this.stats[names[i]!] = res[counters + i]!;
    if (this.secure) {
      const sec = this.layout.secureCounters;
      const at = this.layout.result.secureCounters;
      for (let i = 0; i < sec.length; i++) this.stats[sec[i]!] = res[at + i]!;
    }
    if (DC.netRetransmit.hasSubscribers || DC.netRefused.hasSubscribers) this.reportChanges();
    if (this.losses.length !== 0) {
      for (const [, addr, why, count] of this.losses.splice(0)) this.undeliverable(addr, why, count);
    }
  }

  /** The counters `reportChanges` last saw, once someone subscribed. */
  private seen: Record<string, number> | undefined;

  /** Publishes what this service resent and refused, as differences of the protocol's counters. */
  private reportChanges(): void {
    const s = this.stats;
    const seen = this.seen;
    this.seen = { ...s };
    if (seen === undefined) return;
    const d = (k: string): number => (s[k] ?? 0) - (seen[k] ?? 0);
    const retransmissions = d('retransmissions');
    if (retransmissions + d('rtoExpiries') > 0 && DC.netRetransmit.hasSubscribers) {
      DC.netRetransmit.publish({
        retransmissions,
        fastRetransmits: d('fastRetransmits'),
        rtoExpiries: d('rtoExpiries'),
      });
    }
    if (!DC.netRefused.hasSubscribers) return;
    for (const [k, reason] of REFUSAL_COUNTERS) {
      const count = d(k);
      if (count > 0) DC.netRefused.publish({ side: 'server', reason, count, transport: 'udp' });
    }
  }

  /** Reads what one service call wrote to `out`, or grows `out` when the next event did not fit (`w < 0`). */
  private drain(w: number): void {
    if (w < 0) {
      this.out = new Uint8Array(Math.max(-w, this.out.length * 2));
      this.outView = new DataView(this.out.buffer);
      return;
    }
    this.readEvents(w);
  }

  /** Counts `count` messages for peer `id` that can never be sent (one report per peer per service). */
  private lose(id: number, why: string, count: number): void {
    const l = this.losses.find((x) => x[0] === id);
    if (l !== undefined) l[3] += count;
    else
      this.losses.push([id, this.gone.get(id)?.addr ?? this.byId.get(id)?.addr ?? `peer ${id}`, why, count]);
  }

  /**
   * Entries listeners packed during the service (from `from` on) for a peer that went away
   * before its id could be reused can never be sent: they are dropped and counted.
   */
  private dropGone(from: number): void {
    const e = this.entry;
    const u8 = this.sink.u8;
    const dv = this.sink.dv;
    let w = from;
    for (let off = from; off < this.sink.len; ) {
      const len = e.header + dv.getUint32(off + e.length, true);
      const id = dv.getUint32(off + e.peer, true);
      const g = this.gone.get(id);
      if (g !== undefined && off < g.at) {
        if ((dv.getUint16(off + e.flags, true) & e.control) === 0) this.lose(id, REFUSALS.gone!, 1);
      } else {
        if (w !== off) u8.copyWithin(w, off, off + len);
        w += len;
      }
      off += len;
    }
    this.sink.len = w;
    this.gone.clear();
  }

  protected disconnectPeer(peer: Peer): void {
    native().netDisconnect(this.handle, peer.id);
  }

  protected override removePeer(peer: Peer, reason: DisconnectReason): void {
    this.gone.set(peer.id, { addr: peer.addr, at: this.sink.len });
    super.removePeer(peer, reason);
  }

  private readEvents(len: number): void {
    const u8 = this.out;
    const dv = this.outView;
    const { message, connected, disconnected, refused, pending, fault } = this.layout.events;
    const MESSAGE = message.tag;
    const PEER = message.peer;
    const LENGTH = message.length;
    const CHANNEL = message.channel;
    const PAYLOAD = message.payload;
    const RELIABLE = this.layout.reliableBit;
    let p = 0;
    // Messages come in runs from one peer: look it up once per run (-1: none looked up since the peers last changed).
    let lastId = -1;
    let last: Peer | undefined;
    while (p < len) {
      const tag = u8[p]!;
      if (tag === MESSAGE) {
        const id = dv.getUint32(p + PEER, true);
        const n = dv.getUint32(p + LENGTH, true);
        if (id !== lastId) {
          last = this.byId.get(id);
          lastId = id;
        }
        if (last !== undefined)
          this.receive(last, u8, dv, p + PAYLOAD, p + PAYLOAD + n, (u8[p + CHANNEL]! & RELIABLE) !== 0);
        p += PAYLOAD + n;
        continue;
      }
      lastId = -1;
      if (tag === pending.tag) {
        // How much of this peer's sends the addon left waiting: the backpressure sendMessage sees.
        const peer = this.byId.get(dv.getUint32(p + pending.peer, true));
        if (peer) peer.pendingBytes = dv.getUint32(p + pending.bytes, true);
        p += pending.fixed;
      } else if (tag === refused.tag) {
        const why = this.layout.refusalReasons[u8[p + refused.reason]!];
        this.lose(
          dv.getUint32(p + refused.peer, true),
          REFUSALS[why ?? ''] ?? 'it was refused',
          dv.getUint32(p + refused.count, true),
        );
        p += refused.fixed;
      } else if (tag === connected.tag) {
        const id = dv.getUint32(p + connected.peer, true);
        const n = u8[p + connected.addrLength]!;
        const addr = Buffer.from(u8.buffer, u8.byteOffset + p + connected.addr, n).toString('latin1');
        p += connected.fixed + n;
        let peer = this.byId.get(id);
        if (peer === undefined || peer.addr !== addr) {
          if (peer) this.removePeer(peer, 'remote');
          peer = this.addPeer(addr, id, false);
        }
        if (this.secure) this.identify(peer);
        this.peerConnected(peer);
        const c = this.connecting.get(id);
        if (c) {
          this.connecting.delete(id);
          c.resolve(addr);
        }
      } else if (tag === disconnected.tag) {
        const id = dv.getUint32(p + disconnected.peer, true);
        const reason = (this.layout.disconnectReasons[u8[p + disconnected.reason]!] ??
          'remote') as DisconnectReason;
        p += disconnected.fixed;
        const peer = this.byId.get(id);
        if (peer) this.removePeer(peer, reason);
        const c = this.connecting.get(id);
        if (c) {
          this.connecting.delete(id);
          const address = peer?.addr ?? `peer ${id}`;
          if (DC.netRefused.hasSubscribers) {
            DC.netRefused.publish({ side: 'client', address, reason, transport: 'udp' });
          }
          c.reject(connectFailed(address, reason, this.secure));
        }
      } else if (tag === fault.tag) {
        // The protocol found a gap the peer never filled; it disconnected the peer (its departure follows).
        const peer = this.byId.get(dv.getUint32(p + fault.peer, true));
        const kind = this.layout.faultKinds[u8[p + fault.kind]!];
        const detail = dv.getUint32(p + fault.detail, true);
        p += fault.fixed;
        if (peer)
          this.fault(
            peer,
            new PeerProtocolError(stallMessage(peer.addr, kind, detail, this.options.timeoutMs)),
            true,
            true,
          );
      } else {
        throw new TsageError('ERR_TSAGE_NATIVE', `netService wrote an unknown event tag ${tag}`);
      }
    }
  }

  /** Reads who a secure listener's new peer is (its token's client id and user data). */
  private identify(peer: Peer): void {
    const b = native().netPeerIdentity(this.handle, peer.id);
    if (b === undefined) return;
    const clientId = new DataView(b, 0, 8).getBigUint64(0, true);
    this.identities.set(peer, { address: peer.addr, clientId, userData: new Uint8Array(b, 8) });
  }

  /** Disconnects every peer (they are told) and closes the socket. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.service();
    const n = native();
    for (const peer of [...this.peers.values()]) {
      n.netDisconnect(this.handle, peer.id);
    }
    this.service();
    this.closed = true;
    this.stopPump();
    for (const c of this.connecting.values()) c.reject(new NotConnected('connect: the transport was closed'));
    this.connecting.clear();
    sockets.unregister(this);
    n.netClose(this.handle);
    this.handle = -1;
    // The departures (this side's goodbyes among them), then any error a peer-event listener threw.
    this.reportDepartures();
    this.throwErrors();
  }
}

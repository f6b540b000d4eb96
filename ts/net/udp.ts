/**
 * The UDP transport: reliability, ordering, acknowledgement and retransmission
 * run in the Rust addon (docs/net-protocol.md). Messages are packed into one
 * send buffer; each service is a single native call that queues them, runs the
 * socket and the protocol, and hands back events in one out buffer.
 */
import { randomFillSync } from 'node:crypto';
import { ListenFailed, NotConnected, TsageError } from '../errors.js';
import { native } from '../native.js';
import { formatAddr, resolveHost } from './address.js';
import {
  CTRL_SCHEMA,
  type DisconnectReason,
  type NetManager,
  NetTransport,
  newSink,
  type Peer,
  type Sink,
} from './base.js';
import { type ConditionerOptions, type ResolvedNetOptions, validateConditioner } from './options.js';

const EV_CONNECTED = 1;
const EV_DISCONNECTED = 2;
const EV_MESSAGE = 3;
const EV_REJECTED = 4;
const REASONS: DisconnectReason[] = ['local', 'remote', 'timeout', 'refused'];
/** Send entry header: u32 peer, u8 channel, u8 reliability, u16 0, u32 length. */
const SEND_HEADER = 12;
/** Datagrams read per native call: enough to keep up, few enough that one poll's messages die young. */
const MAX_DATAGRAMS = 512;
const STAT_NAMES = [
  'datagramsIn',
  'datagramsOut',
  'bytesIn',
  'bytesOut',
  'messagesSent',
  'messagesDelivered',
  'retransmissions',
  'fastRetransmits',
  'rtoExpiries',
  'acksSent',
  'pingsSent',
  'connections',
  'droppedGarbled',
  'droppedStranger',
  'droppedWrongConnectionId',
  'droppedBadCookie',
  'droppedExpiredCookie',
  'droppedDuplicate',
  'droppedStale',
  'droppedAbsurdFragment',
  'droppedPeerCap',
  'droppedReassemblyCap',
  'droppedEventBacklog',
  'droppedUnreliablePartial',
  'socketSendErrors',
  'conditionerLost',
  'conditionerDuplicated',
  'conditionerReordered',
  'peers',
] as const;

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

function conditionerArray(c: ConditionerOptions): Float64Array {
  return Float64Array.from([
    c.loss ?? 0,
    c.duplicate ?? 0,
    c.reorder ?? 0,
    c.delayMs ?? 0,
    c.jitterMs ?? 0,
    c.seed ?? 1,
  ]);
}

/** Closes the socket of a transport collected without `close()` (a backstop: `close()` also tells peers goodbye). */
const sockets = new FinalizationRegistry<number>((handle) => native().netClose(handle));

export class UdpTransport extends NetTransport {
  readonly kind = 'udp' as const;
  protected readonly headerBytes = SEND_HEADER;
  private handle: number;
  private local: { address: string; port: number; family: string };
  private readonly sink: Sink = newSink(64 * 1024);
  /** Events out of one service: room for a full read of MAX_DATAGRAMS datagrams of 1200 bytes, so one call hands over all. */
  private out = new Uint8Array(1024 * 1024);
  private outView = new DataView(this.out.buffer);
  private readonly nativeStats = new Float64Array(32);
  private readonly connecting = new Map<
    number,
    { resolve: (addr: string) => void; reject: (e: Error) => void }
  >();
  private pump: NodeJS.Timeout | undefined;

  private constructor(mgr: NetManager, options: ResolvedNetOptions, handle: number) {
    super(mgr, options);
    this.handle = handle;
    sockets.register(this, handle, this);
    const a = native().netLocalAddress(handle);
    const i = a.lastIndexOf(':');
    const ip = a.slice(0, i).replace(/^\[|\]$/g, '');
    this.local = { address: ip, port: Number(a.slice(i + 1)), family: ip.includes(':') ? 'IPv6' : 'IPv4' };
    for (const n of STAT_NAMES) this.stats[n] = 0;
    if (options.conditioner) this.setConditioner(options.conditioner);
  }

  /** Binds a socket; `accept` says whether incoming handshakes are answered (a listener). */
  static async open(mgr: NetManager, options: ResolvedNetOptions, accept: boolean): Promise<UdpTransport> {
    const ip = await resolveHost(options.host);
    const config = Float64Array.from([
      options.mtu,
      options.maxMessageBytes,
      options.maxPeers,
      options.timeoutMs,
      options.keepaliveMs,
      Number.NaN,
      Number.NaN,
      accept ? 1 : 0,
    ]);
    let handle: number;
    try {
      handle = native().netOpen(ip, options.port, config, randomSeed());
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

  /** Installs, changes or (null) removes the seeded link conditioner on outgoing datagrams. */
  setConditioner(c: ConditionerOptions | null): void {
    const v = validateConditioner(c);
    native().netSetConditioner(this.handle, v === null ? null : conditionerArray(v));
  }

  async connectTo(host: string, port: number): Promise<string> {
    const ip = await resolveHost(host);
    const id = native().netConnect(this.handle, ip, port);
    const existing = this.byId.get(id);
    if (existing?.connected) return existing.addr;
    const peer = existing ?? this.addPeer(formatAddr(ip, port), id, false);
    const done = new Promise<string>((resolve, reject) => this.connecting.set(id, { resolve, reject }));
    this.startPump();
    try {
      const addr = await done;
      this.server ??= peer;
      return addr;
    } finally {
      if (this.connecting.size === 0) this.stopPump();
    }
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

  protected get hasOutgoing(): boolean {
    return this.sink.len !== 0;
  }

  protected writeHeader(sink: Sink, at: number, peer: Peer, channel: number, rel: number, len: number): void {
    const dv = sink.dv;
    dv.setUint32(at, peer.id, true);
    sink.u8[at + 4] = channel;
    sink.u8[at + 5] = rel;
    dv.setUint16(at + 6, 0, true);
    dv.setUint32(at + 8, len, true);
  }

  service(): void {
    if (this.closed) return;
    const n = native();
    const sendLen = this.sink.len;
    let passLen = sendLen;
    // Each call hands out whole events as far as `out` holds them; loop until the addon has none left.
    for (let round = 0; ; round++) {
      if (round > 1_000_000)
        throw new TsageError('ERR_TSAGE_NATIVE', 'netService kept reporting more events');
      const w = n.netService(this.handle, this.sink.u8, passLen, this.out, MAX_DATAGRAMS, this.nativeStats);
      passLen = 0;
      if (w < 0) {
        this.out = new Uint8Array(Math.max(-w, this.out.length * 2));
        this.outView = new DataView(this.out.buffer);
        continue;
      }
      this.readEvents(w);
      if (this.nativeStats[0] === 0) break;
    }
    const lost = sendLen !== 0 || this.gone.size !== 0 ? this.settleSends(sendLen) : undefined;
    this.gone.clear();
    for (let i = 0; i < STAT_NAMES.length; i++) this.stats[STAT_NAMES[i]!] = this.nativeStats[i + 1]!;
    if (lost !== undefined) for (const [addr, why, count] of lost) this.undeliverable(addr, why, count);
  }

  /** First refused entry offset per peer id in the last batch: it and every later entry to that peer stay. */
  private readonly rejected = new Map<number, number>();
  /** First entry offset per peer id in the last batch refused because the protocol no longer knows the peer: it and every later entry to that peer are lost. */
  private readonly unknown = new Map<number, number>();
  /** Single entries of the last batch the protocol can never take (too large, refused), by offset, and why. */
  private readonly refusedAlone = new Map<number, string>();
  /** Peers that went away during this service: id to address, and how far the send buffer reached then (entries before that were packed for them). */
  private readonly gone = new Map<number, { addr: string; at: number }>();

  /**
   * After a service, settles the send buffer: of the batch handed over
   * (`sink[0..sendLen)`), entries the protocol refused for now (window full) stay,
   * in order, for the next service, unless their peer went away meanwhile; entries
   * packed during the service (by event listeners) follow them, unless packed for a
   * peer that went away before its id could be reused. Returns what can never be
   * sent, per peer, to be reported: [address, why, messages].
   */
  private settleSends(sendLen: number): [string, string, number][] | undefined {
    for (const p of this.peers.values()) p.pendingBytes = 0;
    const refused = this.rejected;
    const unknown = this.unknown;
    const alone = this.refusedAlone;
    // The usual case, with no walk over the entries: the protocol took the whole batch,
    // nobody left, and nothing was packed meanwhile.
    if (refused.size + unknown.size + alone.size + this.gone.size === 0 && this.sink.len === sendLen) {
      this.sink.len = 0;
      return undefined;
    }
    const u8 = this.sink.u8;
    const dv = this.sink.dv;
    // Per peer id: [address, why, count].
    const lost = new Map<number, [string, string, number]>();
    const lose = (off: number, id: number, why: string): void => {
      // Schema announcements are not messages: only messages are counted.
      if (u8[off + SEND_HEADER] === CTRL_SCHEMA) return;
      const l = lost.get(id);
      if (l !== undefined) l[2]++;
      else lost.set(id, [this.gone.get(id)?.addr ?? this.byId.get(id)?.addr ?? `peer ${id}`, why, 1]);
    };
    let w = 0;
    for (let off = 0; off < this.sink.len; ) {
      const len = SEND_HEADER + dv.getUint32(off + 8, true);
      const id = dv.getUint32(off, true);
      let keep: boolean;
      if (off < sendLen) {
        const first = refused.get(id);
        const from = unknown.get(id);
        keep = first !== undefined && off >= first && !this.gone.has(id);
        if (!keep) {
          if ((first !== undefined && off >= first) || (from !== undefined && off >= from)) {
            lose(off, id, 'the peer is gone');
          } else {
            const why = alone.get(off);
            if (why !== undefined) lose(off, id, why);
          }
        }
      } else {
        const g = this.gone.get(id);
        keep = g === undefined || off >= g.at;
        if (!keep) lose(off, id, 'the peer is gone');
      }
      if (keep) {
        if (w !== off) u8.copyWithin(w, off, off + len);
        const peer = this.byId.get(id);
        if (peer) peer.pendingBytes += len;
        w += len;
      }
      off += len;
    }
    this.sink.len = w;
    refused.clear();
    unknown.clear();
    alone.clear();
    return [...lost.values()];
  }

  protected override removePeer(peer: Peer, reason: DisconnectReason): void {
    this.gone.set(peer.id, { addr: peer.addr, at: this.sink.len });
    super.removePeer(peer, reason);
  }

  private readEvents(len: number): void {
    const u8 = this.out;
    const dv = this.outView;
    let p = 0;
    // Messages come in runs from one peer: look it up once per run (-1: none looked up since the peers last changed).
    let lastId = -1;
    let last: Peer | undefined;
    while (p < len) {
      const tag = u8[p]!;
      const id = dv.getUint32(p + 1, true);
      if (tag === EV_MESSAGE) {
        const n = dv.getUint32(p + 6, true);
        if (id !== lastId) {
          last = this.byId.get(id);
          lastId = id;
        }
        // Bit 7 of the channel byte: sent in a reliable mode.
        if (last !== undefined) this.receive(last, u8, dv, p + 10, p + 10 + n, u8[p + 5]! >= 0x80);
        p += 10 + n;
        continue;
      }
      lastId = -1;
      if (tag === EV_CONNECTED) {
        const n = u8[p + 5]!;
        const addr = Buffer.from(u8.buffer, u8.byteOffset + p + 6, n).toString('latin1');
        p += 6 + n;
        let peer = this.byId.get(id);
        if (peer === undefined || peer.addr !== addr) {
          if (peer) this.removePeer(peer, 'remote');
          peer = this.addPeer(addr, id, false);
        }
        this.peerConnected(peer);
        const c = this.connecting.get(id);
        if (c) {
          this.connecting.delete(id);
          c.resolve(addr);
        }
      } else if (tag === EV_DISCONNECTED) {
        const reason = REASONS[u8[p + 5]!] ?? 'remote';
        p += 6;
        const peer = this.byId.get(id);
        if (peer) this.removePeer(peer, reason);
        const c = this.connecting.get(id);
        if (c) {
          this.connecting.delete(id);
          c.reject(
            new NotConnected(`connect: the handshake with ${peer?.addr ?? `peer ${id}`} failed (${reason})`),
          );
        }
      } else if (tag === EV_REJECTED) {
        const code = u8[p + 5]!;
        p += 6;
        const peerId = this.sink.dv.getUint32(id, true);
        if (code === 1) this.rejected.set(peerId, id);
        else if (code === 2) this.unknown.set(peerId, id);
        else this.refusedAlone.set(id, code === 3 ? 'it is too large' : 'it was refused');
      } else {
        throw new TsageError('ERR_TSAGE_NATIVE', `netService wrote an unknown event tag ${tag}`);
      }
    }
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

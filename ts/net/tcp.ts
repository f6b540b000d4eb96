/**
 * The TCP transport, as pysage's: each message is a frame of a 4-byte
 * big-endian length and the packed message. Always reliable and ordered
 * (reliability and channel options are accepted and ignored). Frames packed
 * during a tick go out in one write per peer.
 *
 * Between tsage peers a few control frames travel too: the listener's welcome
 * (or refusal, with its reason) as a connection opens, so that `connect()`
 * resolves only once the listener took it; and a keepalive after `keepaliveMs`
 * without sending, so that `timeoutMs` of silence means the peer is gone. On
 * pysage's wire (`wire: 'pysage'`) none of them: a connection carries the
 * messages' frames and nothing else, so `connect()` resolves once TCP has
 * connected, a listener that is full closes the connection without a word,
 * and a silent peer stays (pysage sends no keepalives). Either way a frame
 * must arrive whole within `timeoutMs` of its first byte (a peer that trickles
 * bytes cannot hold a connection open), and what arrives is framed in linear
 * time: a frame that lies in one received chunk is read where it lies, and one
 * cut by a chunk boundary is copied once, when it is complete.
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { aborted, throwIfAborted } from '../abort.js';
import { DC } from '../diagnostics.js';
import { ListenFailed, NotConnected, PeerProtocolError } from '../errors.js';
import { TCP_COUNTERS } from '../stats.js';
import { formatAddr, resolveHost } from './address.js';
import { CTRL_PING, type NetManager, NetTransport, newSink, type Peer, type Sink } from './base.js';
import type { ResolvedNetOptions } from './options.js';

/** The listener took the connection: the first frame a tsage listener sends. */
const CTRL_WELCOME = 3;
/** The listener refused the connection (the reason follows, UTF-8); it closes it then. */
const CTRL_REFUSED = 4;
/** Longest refusal reason read. */
const MAX_REASON = 200;
/** How long a refused connection is given to read its refusal before it is destroyed. */
const REFUSAL_LINGER_MS = 1000;

const PING_FRAME = new Uint8Array([0, 0, 0, 1, CTRL_PING]);
const WELCOME_FRAME = new Uint8Array([0, 0, 0, 1, CTRL_WELCOME]);

interface TcpPeer {
  peer: Peer;
  socket: Socket;
  sink: Sink;
  /** Bytes received and not yet framed: chunks as they came, the first read from `rxOff`. */
  rx: Buffer[];
  rxOff: number;
  rxLen: number;
  /** A view of `rx[0]` (made once per chunk, not per frame), or undefined until one is needed. */
  rxDv: DataView | undefined;
  /** When the first byte of the frame not yet complete arrived (-1: none is under way). */
  frameSince: number;
  /** When something was last received, and last sent. */
  lastRecv: number;
  lastSend: number;
  /** Set when this side closed the connection. */
  closing: boolean;
  /** Our connection attempt, until the listener's welcome or refusal. */
  pending?: { resolve: (addr: string) => void; reject: (e: Error) => void; timer: NodeJS.Timeout };
}

export class TcpTransport extends NetTransport {
  readonly kind = 'tcp' as const;
  protected readonly headerBytes = 4;
  private server_: Server | undefined;
  private local = { address: '', port: 0, family: '' };
  private readonly conns = new Map<Peer, TcpPeer>();
  private readonly perIp = new Map<string, number>();
  private nextId = 1;
  /** Bytes received and not yet framed at which a connection stops reading (always room for a whole frame). */
  private readonly rxLimit: number;
  /** Bytes received and not yet framed, all connections together. */
  private rxTotal = 0;
  private wake: () => void = () => undefined;

  constructor(mgr: NetManager, options: ResolvedNetOptions) {
    super(mgr, options);
    this.rxLimit = Math.max(options.maxPendingBytes, options.maxMessageBytes + 4);
    for (const k of TCP_COUNTERS) this.stats[k] = 0;
  }

  get address(): { address: string; port: number; family: string } {
    return { ...this.local };
  }

  /** Starts listening. */
  async listen(): Promise<void> {
    const ip = await resolveHost(this.options.host);
    const server = createServer((socket) => this.incoming(socket));
    this.server_ = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(
          new ListenFailed(`cannot listen on TCP ${formatAddr(ip, this.options.port)}: ${err.message}`, {
            cause: err,
          }),
        ),
      );
      server.listen(this.options.port, ip, () => {
        server.removeAllListeners('error');
        resolve();
      });
    });
    const a = server.address();
    if (a && typeof a === 'object') this.local = { address: a.address, port: a.port, family: a.family };
  }

  /** A connection to the listener: welcomed, or refused with its reason when the listener is full. */
  private incoming(socket: Socket): void {
    const ip = socket.remoteAddress ?? '?';
    let why: string | undefined;
    let reason = '';
    if (this.conns.size >= this.options.maxPeers) {
      this.stats.droppedPeerCap!++;
      why = `the listener is full (maxPeers ${this.options.maxPeers})`;
      reason = 'peer-cap';
    } else if ((this.perIp.get(ip) ?? 0) >= this.options.maxPeersPerIp) {
      this.stats.droppedIpCap!++;
      why = `the listener has ${this.options.maxPeersPerIp} connections from ${ip} (maxPeersPerIp)`;
      reason = 'ip-cap';
    }
    if (why !== undefined) {
      if (DC.netRefused.hasSubscribers)
        DC.netRefused.publish({ side: 'server', reason, count: 1, transport: 'tcp' });
      socket.on('error', () => undefined);
      if (this.options.wire === 'pysage') {
        // pysage's wire has no refusal to send: the connection is closed unread.
        socket.destroy();
        return;
      }
      const text = Buffer.from(why, 'utf8');
      const frame = Buffer.alloc(5 + text.length);
      frame.writeUInt32BE(1 + text.length, 0);
      frame[4] = CTRL_REFUSED;
      text.copy(frame, 5);
      socket.end(frame);
      setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref();
      return;
    }
    const c = this.adopt(socket);
    if (this.options.wire === 'tsage') c.socket.write(WELCOME_FRAME);
    this.peerConnected(c.peer);
  }

  async connectTo(host: string, port: number, signal?: AbortSignal): Promise<string> {
    const ip = await resolveHost(host);
    throwIfAborted(signal, 'connect');
    const socket = tcpConnect({ host: ip, port, noDelay: true });
    const timeoutMs = this.options.timeoutMs;
    const what = formatAddr(ip, port);
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        clearTimeout(t);
        socket.destroy();
        reject(aborted(signal!, 'connect'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      socket.once('close', () => signal?.removeEventListener('abort', onAbort));
      socket.once('connect', () => signal?.removeEventListener('abort', onAbort));
      const t = setTimeout(() => {
        socket.destroy();
        reject(new NotConnected(`connect: no TCP connection to ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(t);
        resolve();
      });
      socket.once('error', (err) => {
        clearTimeout(t);
        reject(new NotConnected(`connect: ${err.message}`));
      });
    });
    if (!this.local.port && socket.localAddress) {
      this.local = {
        address: socket.localAddress,
        port: socket.localPort ?? 0,
        family: socket.localFamily ?? '',
      };
    }
    const c = this.adopt(socket);
    if (this.options.wire === 'pysage') {
      // Nothing to wait for: a pysage listener says nothing, it only reads frames.
      this.peerConnected(c.peer);
      this.server ??= c.peer;
      return c.peer.addr;
    }
    // Connected once the listener says so: a full one refuses, with its reason.
    const addr = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        c.pending = undefined;
        socket.destroy();
        reject(
          new NotConnected(
            `connect: the listener at ${what} did not welcome the connection within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      c.pending = { resolve, reject, timer };
      this.scheduleFlush();
    });
    this.server ??= c.peer;
    return addr;
  }

  private adopt(socket: Socket): TcpPeer {
    socket.setNoDelay(true);
    const ip = socket.remoteAddress ?? '?';
    this.perIp.set(ip, (this.perIp.get(ip) ?? 0) + 1);
    const peer = this.addPeer(formatAddr(ip, socket.remotePort), this.nextId++, false);
    const now = performance.now();
    const c: TcpPeer = {
      peer,
      socket,
      sink: newSink(16 * 1024),
      rx: [],
      rxOff: 0,
      rxLen: 0,
      rxDv: undefined,
      frameSince: -1,
      lastRecv: now,
      lastSend: now,
      closing: false,
    };
    this.conns.set(peer, c);
    socket.on('data', (chunk: Buffer) => {
      this.stats.bytesIn! += chunk.length;
      const at = performance.now();
      if (c.rxLen === 0) c.frameSince = at;
      c.rx.push(chunk);
      c.rxLen += chunk.length;
      this.rxTotal += chunk.length;
      c.lastRecv = at;
      // Stop reading until a tick takes frames out, so a peer that outruns us meets TCP backpressure.
      if (c.rxLen >= this.rxLimit || this.rxTotal >= this.options.maxBufferedBytes) socket.pause();
      if (c.pending !== undefined) this.scheduleFlush();
      this.wake();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      // Frames already received are still delivered on the next tick.
      this.readFrames(c);
      this.forget(c);
      this.wake();
      const p = c.pending;
      if (p !== undefined) {
        c.pending = undefined;
        clearTimeout(p.timer);
        p.reject(
          new NotConnected(`connect: the listener at ${peer.addr} closed the connection before welcoming it`),
        );
      }
      this.removePeer(peer, c.closing ? 'local' : 'remote');
      // Frames packed since the last service can no longer be written.
      const unsent = countFrames(c.sink);
      c.sink.len = 0;
      if (unsent !== 0) this.undeliverable(peer.addr, 'the peer is gone', unsent);
    });
    return c;
  }

  /** Lets go of a connection's books (once). */
  private forget(c: TcpPeer): void {
    if (this.conns.get(c.peer) !== c) return;
    this.conns.delete(c.peer);
    const ip = c.socket.remoteAddress ?? '?';
    const n = (this.perIp.get(ip) ?? 1) - 1;
    if (n <= 0) this.perIp.delete(ip);
    else this.perIp.set(ip, n);
    this.rxTotal -= c.rxLen;
    c.rx = [];
    c.rxLen = 0;
    c.rxDv = undefined;
  }

  protected get hasOutgoing(): boolean {
    for (const c of this.conns.values()) if (c.sink.len !== 0) return true;
    return false;
  }

  protected sinkFor(peer: Peer): Sink {
    const c = this.conns.get(peer);
    if (c === undefined) throw new NotConnected(`sendMessage: peer ${peer.addr} is gone`);
    return c.sink;
  }

  protected writeHeader(
    sink: Sink,
    at: number,
    _peer: Peer,
    _channel: number,
    _rel: number,
    len: number,
  ): void {
    sink.dv.setUint32(at, len);
    this.stats.messagesOut!++;
  }

  /** The big-endian u32 at `k` bytes into what is unframed (there are at least `k + 4`). */
  private peekLength(c: TcpPeer, k: number): number {
    let v = 0;
    let chunk = 0;
    let at = c.rxOff + k;
    for (let i = 0; i < 4; i++) {
      while (at >= c.rx[chunk]!.length) {
        at -= c.rx[chunk]!.length;
        chunk++;
      }
      v = v * 256 + c.rx[chunk]![at++]!;
    }
    return v;
  }

  /** Takes the next `n` unframed bytes: a view when they lie in one chunk, else one copy of them. */
  private take(c: TcpPeer, n: number): Buffer {
    const first = c.rx[0]!;
    let out: Buffer;
    if (first.length - c.rxOff >= n) {
      out = first.subarray(c.rxOff, c.rxOff + n);
      c.rxOff += n;
    } else {
      out = Buffer.allocUnsafe(n);
      let w = 0;
      while (w < n) {
        const ch = c.rx[0]!;
        const k = Math.min(n - w, ch.length - c.rxOff);
        ch.copy(out, w, c.rxOff, c.rxOff + k);
        w += k;
        c.rxOff += k;
        if (c.rxOff === ch.length) {
          c.rx.shift();
          c.rxOff = 0;
          c.rxDv = undefined;
        }
      }
    }
    if (c.rx.length !== 0 && c.rxOff === c.rx[0]!.length) {
      c.rx.shift();
      c.rxOff = 0;
      c.rxDv = undefined;
    }
    c.rxLen -= n;
    this.rxTotal -= n;
    return out;
  }

  /** Sockets report what they read from a callback: an idle `intervalMs: 0` loop waits for it. */
  onArrival(wake: () => void): void {
    this.wake = wake;
  }

  /**
   * Splits what arrived into frames and hands each on; a frame not yet whole waits, uncopied.
   * A frame that lies in one chunk is read in place (no view, no copy); only one cut by a
   * chunk boundary is copied, once.
   */
  private readFrames(c: TcpPeer): void {
    let took = false;
    const max = this.options.maxMessageBytes;
    while (c.rxLen >= 4 && !c.peer.dropping) {
      const head = c.rx[0]!;
      const off = c.rxOff;
      const avail = head.length - off;
      let dv = c.rxDv;
      if (avail >= 4 && dv === undefined) {
        dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
        c.rxDv = dv;
      }
      const n = avail >= 4 ? dv!.getUint32(off) : this.peekLength(c, 0);
      if (n === 0 || n > max) {
        // Not a frame we can believe: the stream is out of step, so the connection cannot go on.
        this.stats.droppedGarbled!++;
        this.fault(
          c.peer,
          new PeerProtocolError(
            `peer ${c.peer.addr} sent a TCP frame of ${n} bytes (frames are 1 to maxMessageBytes ${max})`,
          ),
          true,
        );
        return;
      }
      if (c.rxLen < 4 + n) break;
      took = true;
      if (avail >= 4 + n && c.pending === undefined) {
        this.inPlace(c, head, dv!, off, n);
        continue;
      }
      this.stats.messagesIn!++;
      if (avail >= 4 + n) {
        c.rxOff = off + 4 + n;
        c.rxLen -= 4 + n;
        this.rxTotal -= 4 + n;
        if (c.rxOff === head.length) {
          c.rx.shift();
          c.rxOff = 0;
          c.rxDv = undefined;
        }
        this.frame(c, head, dv!, off, off + 4 + n);
      } else {
        const f = this.take(c, 4 + n);
        this.frame(c, f, new DataView(f.buffer, f.byteOffset, f.byteLength), 0, f.length);
      }
    }
    // The next frame began at the latest with the last bytes received.
    if (took) c.frameSince = c.rxLen === 0 ? -1 : c.lastRecv;
  }

  /**
   * The run of whole frames at `off` in the first chunk `head` (the first `n` bytes long, and
   * whole), on locals: the connection's state is written back once for the run, not per frame.
   * It stops before a frame cut by the chunk's end or of a length it cannot believe (the loop
   * of {@link readFrames} then deals with it), and after a frame that drops the peer.
   */
  private inPlace(c: TcpPeer, head: Buffer, dv: DataView, off: number, n: number): void {
    const max = this.options.maxMessageBytes;
    const lim = head.length;
    const peer = c.peer;
    let p = off;
    let m = n;
    do {
      this.stats.messagesIn!++;
      this.receive(peer, head, dv, p + 4, p + 4 + m);
      p += 4 + m;
      if (p + 4 > lim || peer.dropping) break;
      m = dv.getUint32(p);
    } while (m !== 0 && m <= max && p + 4 + m <= lim);
    // A 'peerError' listener that disconnected the peer has had its buffers forgotten already.
    if (c.rx[0] !== head) return;
    c.rxLen -= p - off;
    this.rxTotal -= p - off;
    c.rxOff = p;
    if (p === lim) {
      c.rx.shift();
      c.rxOff = 0;
      c.rxDv = undefined;
    }
  }

  /** One whole frame, `u8[at..end)`: the listener's welcome or refusal while connecting, else a payload. */
  private frame(c: TcpPeer, u8: Buffer, dv: DataView, at: number, end: number): void {
    if (c.pending !== undefined) {
      const kind = u8[at + 4]!;
      if (kind === CTRL_WELCOME || kind === CTRL_REFUSED) {
        const p = c.pending;
        c.pending = undefined;
        clearTimeout(p.timer);
        if (kind === CTRL_WELCOME && end - at === 5) {
          this.peerConnected(c.peer);
          p.resolve(c.peer.addr);
        } else {
          const why = u8.subarray(at + 5, Math.min(end, at + 5 + MAX_REASON)).toString('utf8');
          p.reject(
            new NotConnected(`connect: the listener at ${c.peer.addr} refused the connection: ${why}`),
          );
          c.closing = true;
          c.socket.destroy();
        }
        return;
      }
    }
    this.receive(c.peer, u8, dv, at + 4, end);
  }

  service(): void {
    this.beginService();
    const now = performance.now();
    const { timeoutMs, keepaliveMs } = this.options;
    // Keepalives, and so timing out silence, are tsage's: pysage's wire carries only messages.
    const pings = this.options.wire === 'tsage';
    for (const c of this.conns.values()) {
      this.readFrames(c);
      if (c.peer.dropping) continue;
      if (c.frameSince >= 0 && now - c.frameSince > timeoutMs) {
        this.stats.droppedSlowFrame!++;
        this.fault(
          c.peer,
          new PeerProtocolError(
            `peer ${c.peer.addr} took more than ${timeoutMs} ms to send a TCP frame (${c.rxLen} bytes of it arrived)`,
          ),
          true,
        );
        continue;
      }
      if (now - c.lastRecv > timeoutMs && c.pending === undefined && pings) {
        // Silent too long (a tsage peer sends a keepalive every keepaliveMs): gone.
        c.socket.destroy();
        this.forget(c);
        this.removePeer(c.peer, 'timeout');
        continue;
      }
      if (c.rxLen < this.rxLimit && this.rxTotal < this.options.maxBufferedBytes && c.socket.isPaused())
        c.socket.resume();
      if (
        pings &&
        c.sink.len === 0 &&
        now - c.lastSend >= keepaliveMs &&
        c.peer.connected &&
        c.socket.writable
      ) {
        c.socket.write(PING_FRAME);
        this.stats.pingsSent!++;
        c.lastSend = now;
      }
      // A socket that can no longer be written keeps its frames until 'close' reports them undeliverable.
      if (c.sink.len !== 0 && c.socket.writable) {
        // The socket takes the sink's own bytes (it holds them until written) and the peer packs
        // into a new buffer of the same size: no copy of what was packed.
        const bytes = c.sink.u8.subarray(0, c.sink.len);
        this.stats.bytesOut! += bytes.length;
        c.socket.write(bytes);
        c.sink = unzeroedSink(c.sink.u8.length);
        c.lastSend = now;
      }
      c.peer.pendingBytes = c.socket.writableLength;
    }
    this.settlePeers();
    this.stats.bufferedBytes = this.rxTotal;
  }

  protected disconnectPeer(peer: Peer): void {
    const c = this.conns.get(peer);
    if (c === undefined) return;
    c.closing = true;
    c.socket.destroy();
    this.forget(c);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.service();
    this.closed = true;
    const ends: Promise<void>[] = [];
    for (const c of this.conns.values()) {
      c.closing = true;
      ends.push(new Promise((r) => c.socket.end(() => r())));
      c.socket.destroySoon();
    }
    await Promise.race([Promise.all(ends), new Promise((r) => setTimeout(r, 1000))]);
    for (const c of this.conns.values()) c.socket.destroy();
    // Report the peers gone now, as UDP does, rather than on a 'close' event after disconnect() resolved.
    for (const c of [...this.conns.values()]) {
      this.forget(c);
      this.removePeer(c.peer, 'local');
    }
    if (this.server_) await new Promise<void>((r) => this.server_!.close(() => r()));
    // The departures (this side's goodbyes among them), then any error a peer-event listener threw.
    this.reportDepartures();
    this.throwErrors();
  }
}

/**
 * A sink whose bytes are not zeroed first: packing writes every byte of a frame before the
 * frame counts (a sink is otherwise reused as it is, over the frames it held before).
 */
function unzeroedSink(size: number): Sink {
  const u8 = new Uint8Array(Buffer.allocUnsafeSlow(size).buffer, 0, size);
  return { u8, dv: new DataView(u8.buffer, 0, size), len: 0 };
}

/** Messages in a sink of frames (u32 big-endian length, then the payload); control payloads (below 101) are not messages. */
function countFrames(sink: Sink): number {
  let n = 0;
  for (let off = 0; off < sink.len; off += 4 + sink.dv.getUint32(off)) if (sink.u8[off + 4]! >= 101) n++;
  return n;
}

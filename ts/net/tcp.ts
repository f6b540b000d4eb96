/**
 * The TCP transport, as pysage's: each message is a frame of a 4-byte
 * big-endian length and the packed message. Always reliable and ordered
 * (reliability and channel options are accepted and ignored). Frames packed
 * during a tick go out in one write per peer.
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { aborted, throwIfAborted } from '../abort.js';
import { DC } from '../diagnostics.js';
import { ListenFailed, NotConnected } from '../errors.js';
import { formatAddr, resolveHost } from './address.js';
import { CTRL_SCHEMA, type NetManager, NetTransport, newSink, type Peer, type Sink } from './base.js';
import type { ResolvedNetOptions } from './options.js';

interface TcpPeer {
  peer: Peer;
  socket: Socket;
  sink: Sink;
  /** Bytes received and not yet framed. */
  rx: Buffer[];
  rxLen: number;
  /** Set when this side closed the connection. */
  closing: boolean;
}

export class TcpTransport extends NetTransport {
  readonly kind = 'tcp' as const;
  protected readonly headerBytes = 4;
  private server_: Server | undefined;
  private local = { address: '', port: 0, family: '' };
  private readonly conns = new Map<Peer, TcpPeer>();
  private nextId = 1;
  /** Bytes received and not yet framed at which a connection stops reading (always room for a whole frame). */
  private readonly rxLimit: number;

  constructor(mgr: NetManager, options: ResolvedNetOptions) {
    super(mgr, options);
    this.rxLimit = Math.max(options.maxPendingBytes, options.maxMessageBytes + 4);
    for (const k of [
      'messagesIn',
      'messagesOut',
      'bytesIn',
      'bytesOut',
      'droppedGarbled',
      'droppedPeerCap',
    ]) {
      this.stats[k] = 0;
    }
  }

  get address(): { address: string; port: number; family: string } {
    return { ...this.local };
  }

  /** Starts listening. */
  async listen(): Promise<void> {
    const ip = await resolveHost(this.options.host);
    const server = createServer((socket) => {
      if (this.conns.size >= this.options.maxPeers) {
        this.stats.droppedPeerCap!++;
        if (DC.netRefused.hasSubscribers)
          DC.netRefused.publish({ side: 'server', reason: 'peer-cap', count: 1, transport: 'tcp' });
        socket.destroy();
        return;
      }
      this.adopt(socket);
    });
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

  async connectTo(host: string, port: number, signal?: AbortSignal): Promise<string> {
    const ip = await resolveHost(host);
    throwIfAborted(signal, 'connect');
    const socket = tcpConnect({ host: ip, port, noDelay: true });
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
        reject(
          new NotConnected(
            `connect: no TCP connection to ${formatAddr(ip, port)} within ${this.options.timeoutMs} ms`,
          ),
        );
      }, this.options.timeoutMs);
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
    this.server ??= c.peer;
    return c.peer.addr;
  }

  private adopt(socket: Socket): TcpPeer {
    socket.setNoDelay(true);
    const peer = this.addPeer(
      formatAddr(socket.remoteAddress ?? '?', socket.remotePort),
      this.nextId++,
      false,
    );
    const c: TcpPeer = { peer, socket, sink: newSink(16 * 1024), rx: [], rxLen: 0, closing: false };
    this.conns.set(peer, c);
    socket.on('data', (chunk: Buffer) => {
      this.stats.bytesIn! += chunk.length;
      c.rx.push(chunk);
      c.rxLen += chunk.length;
      // Stop reading until a tick takes frames out, so a peer that outruns us meets TCP backpressure.
      if (c.rxLen >= this.rxLimit) socket.pause();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      // Frames already received are still delivered on the next tick.
      this.readFrames(c);
      this.conns.delete(peer);
      this.removePeer(peer, c.closing ? 'local' : 'remote');
      // Frames packed since the last service can no longer be written.
      const unsent = countFrames(c.sink);
      c.sink.len = 0;
      if (unsent !== 0) this.undeliverable(peer.addr, 'the peer is gone', unsent);
    });
    this.peerConnected(peer);
    return c;
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

  /** Splits what arrived into frames and hands each to the manager. */
  private readFrames(c: TcpPeer): void {
    if (c.rxLen < 4) return;
    const buf = c.rx.length === 1 ? c.rx[0]! : Buffer.concat(c.rx, c.rxLen);
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const u8 = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    let p = 0;
    while (p + 4 <= buf.length) {
      const n = dv.getUint32(p);
      if (n === 0 || n > this.options.maxMessageBytes) {
        // Not a frame we can believe: the stream is out of step, so the connection cannot go on.
        this.stats.droppedGarbled!++;
        c.socket.destroy();
        c.rx = [];
        c.rxLen = 0;
        return;
      }
      if (p + 4 + n > buf.length) break;
      this.stats.messagesIn!++;
      this.receive(c.peer, u8, dv, p + 4, p + 4 + n);
      p += 4 + n;
    }
    const rest = buf.subarray(p);
    c.rx = rest.length ? [rest] : [];
    c.rxLen = rest.length;
  }

  service(): void {
    for (const c of this.conns.values()) {
      this.readFrames(c);
      if (c.rxLen < this.rxLimit && c.socket.isPaused()) c.socket.resume();
      // A socket that can no longer be written keeps its frames until 'close' reports them undeliverable.
      if (c.sink.len !== 0 && c.socket.writable) {
        const bytes = Buffer.from(c.sink.u8.subarray(0, c.sink.len));
        this.stats.bytesOut! += bytes.length;
        c.socket.write(bytes);
        c.sink.len = 0;
      }
      c.peer.pendingBytes = c.socket.writableLength;
    }
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
    for (const c of this.conns.values()) this.removePeer(c.peer, 'local');
    this.conns.clear();
    if (this.server_) await new Promise<void>((r) => this.server_!.close(() => r()));
    // The departures (this side's goodbyes among them), then any error a peer-event listener threw.
    this.reportDepartures();
    this.throwErrors();
  }
}

/** Messages in a sink of frames (u32 big-endian length, then the payload); schema announcements are not messages. */
function countFrames(sink: Sink): number {
  let n = 0;
  for (let off = 0; off < sink.len; off += 4 + sink.dv.getUint32(off))
    if (sink.u8[off + 4] !== CTRL_SCHEMA) n++;
  return n;
}

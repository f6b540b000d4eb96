/**
 * A raw implementation of tsage's UDP protocol for the hostile-input tests,
 * written from docs/net-protocol.md and not from the addon: the CRC32C every
 * datagram ends with, the HELLO/COOKIE/CONNECT/ACCEPT handshake, and DATA
 * packets carrying commands of any shape (fragments, channel sequences,
 * reliable ids), so a test can send what a well-behaved peer never would.
 * It acknowledges nothing and resends nothing: it is an attacker.
 */
import { createSocket, type Socket } from 'node:dgram';
import type { ExecutionContext } from 'ava';

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC32C (Castagnoli) of `b`. */
export function crc32c(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = (c >>> 8) ^ TABLE[(c ^ b[i]!) & 0xff]!;
  return (c ^ 0xffffffff) >>> 0;
}

/** `b` with its CRC32C appended (little-endian), as every datagram of the plain link ends. */
export function sealed(b: Uint8Array): Buffer {
  const out = Buffer.alloc(b.length + 4);
  out.set(b);
  out.writeUInt32LE(crc32c(b), b.length);
  return out;
}

/** `b` without its CRC, or undefined if the CRC does not match. */
export function unsealed(b: Buffer): Buffer | undefined {
  if (b.length < 4) return undefined;
  const body = b.subarray(0, b.length - 4);
  return b.readUInt32LE(b.length - 4) === crc32c(body) ? body : undefined;
}

export const T = {
  HELLO: 0x71,
  COOKIE: 0x72,
  CONNECT: 0x73,
  ACCEPT: 0x74,
  REJECT: 0x75,
  DATA: 0x76,
  ACK: 0x77,
  DISCONNECT: 0x78,
} as const;

/** Reliability codes on the wire. */
export const REL = { unreliable: 0, unreliableSequenced: 1, reliable: 2, ordered: 3, sequenced: 4 } as const;

/** One command of a DATA packet. */
export interface Cmd {
  rel: number;
  channel: number;
  /** Reliable id (low 16 bits go on the wire), for the reliable modes. */
  id?: number;
  /** Channel sequence, for the modes that carry one. */
  seq?: number;
  frag?: { total: number; count: number; index: number };
  payload: Uint8Array;
}

function varint(n: number): number[] {
  const out: number[] = [];
  do {
    out.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    n >>>= 7;
  } while (n > 0);
  return out;
}

/** A command in wire form. */
export function encodeCmd(c: Cmd): Buffer {
  const h: number[] = [c.rel | (c.frag ? 0x08 : 0), c.channel];
  const u16 = (v: number) => h.push(v & 0xff, (v >>> 8) & 0xff);
  const u32 = (v: number) => h.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  if (c.rel >= 2) u16(c.id ?? 0);
  if (c.rel === 1 || c.rel === 3 || c.rel === 4 || (c.rel === 0 && c.frag)) u16(c.seq ?? 0);
  if (c.frag) {
    u32(c.frag.total);
    u32(c.frag.count);
    u32(c.frag.index);
  }
  h.push(...varint(c.payload.length));
  return Buffer.concat([Buffer.from(h), c.payload]);
}

/** A DATA packet to connection `conn` with packet sequence `seq`, its CRC appended. */
export function dataPacket(conn: number, seq: number, cmds: Cmd[], flags = 0): Buffer {
  const head = Buffer.alloc(20);
  head[0] = T.DATA;
  head[1] = flags;
  head.writeUInt32LE(conn >>> 0, 2);
  head.writeUInt16LE(seq & 0xffff, 6);
  return sealed(Buffer.concat([head, ...cmds.map(encodeCmd)]));
}

/** Fragment fields as a sender makes them for a message of `total` bytes split into pieces of at most `room`. */
export function fragments(total: number, room = 1100): { count: number; size: number } {
  const count = Math.ceil(total / room);
  return { count, size: Math.ceil(total / count) };
}

/** A payload of a schema announcement: 0x01 then the descriptor as UTF-8 JSON. */
export function announcement(d: unknown): Buffer {
  return Buffer.concat([Buffer.from([1]), Buffer.from(JSON.stringify(d), 'utf8')]);
}

/** A raw UDP client on a loopback address of its own choosing (any of 127.0.0.0/8). */
export class RawPeer {
  readonly socket: Socket;
  /** Datagrams received, CRC checked and stripped (bad ones are dropped). */
  readonly inbox: Buffer[] = [];
  /** The connection id the listener expects in what this peer sends, once connected. */
  conn = 0;
  nonce = 0n;
  /** The last CONNECT sent, as it went on the wire. */
  lastConnect: Buffer | undefined;
  private seq = 0;

  private constructor(
    socket: Socket,
    readonly port: number,
    readonly host: string,
  ) {
    this.socket = socket;
    socket.on('message', (d) => {
      const body = unsealed(d);
      if (body !== undefined && this.inbox.length < 10_000) this.inbox.push(Buffer.from(body));
    });
  }

  /** Binds a socket on `host` (default 127.0.0.1) that sends to `port` on 127.0.0.1; closed at teardown. */
  static async open(t: ExecutionContext, port: number, host = '127.0.0.1', bindPort = 0): Promise<RawPeer> {
    const s = createSocket('udp4');
    s.on('error', () => undefined);
    await new Promise<void>((r) => s.bind(bindPort, host, r));
    const p = new RawPeer(s, port, host);
    t.teardown(() => p.close());
    return p;
  }

  close(): void {
    try {
      this.socket.close();
    } catch {
      // closed already
    }
  }

  get address(): string {
    return `${this.host}:${this.socket.address().port}`;
  }

  send(d: Uint8Array): Promise<void> {
    return new Promise((r) => this.socket.send(d, this.port, '127.0.0.1', () => r()));
  }

  /** Waits (polling `tick` meanwhile) for a datagram that `pick` accepts; undefined after `ms`. */
  async expect(pick: (d: Buffer) => boolean, tick: () => void, ms = 3000): Promise<Buffer | undefined> {
    const until = performance.now() + ms;
    for (let i = 0; performance.now() < until; i++) {
      tick();
      const k = this.inbox.findIndex(pick);
      if (k >= 0) return this.inbox.splice(k, 1)[0];
      await new Promise((r) => setTimeout(r, i < 20 ? 0 : 2));
    }
    return undefined;
  }

  /**
   * The handshake: HELLO, the COOKIE, CONNECT with it. Resolves with what the listener answered
   * the CONNECT with (ACCEPT or REJECT), or undefined if it did not; on ACCEPT `conn` is set.
   */
  async handshake(tick: () => void, clientConn = 0x1234_5678): Promise<Buffer | undefined> {
    this.nonce = BigInt(Math.floor(Math.random() * 2 ** 48)) + 1n;
    const hello = Buffer.alloc(32);
    hello[0] = T.HELLO;
    hello.writeUInt16LE(1, 6);
    hello.writeBigUInt64LE(this.nonce, 8);
    await this.send(sealed(hello));
    const cookie = await this.expect((d) => d[0] === T.COOKIE, tick);
    if (cookie === undefined) return undefined;
    const connect = Buffer.alloc(32);
    connect[0] = T.CONNECT;
    cookie.copy(connect, 6, 6, 26);
    connect.writeUInt32LE(clientConn >>> 0, 26);
    this.lastConnect = sealed(connect);
    await this.send(this.lastConnect);
    const answer = await this.expect((d) => d[0] === T.ACCEPT || d[0] === T.REJECT, tick);
    if (answer?.[0] === T.ACCEPT) this.conn = answer.readUInt32LE(14);
    return answer;
  }

  /** The next reliable id, and the next sequence number per channel and stream, that `message` uses. */
  nextId = 0;
  private readonly chanSeq = new Map<number, number>();

  /**
   * Sends one message as a well-behaved sender would: reliable ids and channel sequence in
   * order, fragmented (one fragment per packet) when larger than `room`. Every `pace`
   * packets it calls `between` (tick the listener there, so its socket buffer never overflows).
   */
  async message(
    payload: Uint8Array,
    opts: {
      rel?: number;
      channel?: number;
      room?: number;
      pace?: number;
      between?: () => Promise<void>;
    } = {},
  ): Promise<void> {
    const rel = opts.rel ?? REL.ordered;
    const channel = opts.channel ?? 0;
    const key = channel * 8 + rel;
    const seq = this.chanSeq.get(key) ?? 0;
    this.chanSeq.set(key, (seq + 1) & 0xffff);
    const room = opts.room ?? 1100;
    const reliable = rel >= 2;
    if (payload.length <= room) {
      await this.data([{ rel, channel, id: reliable ? this.nextId++ : 0, seq, payload }]);
      return;
    }
    const { count, size } = fragments(payload.length, room);
    for (let i = 0; i < count; i++) {
      const frag = { total: payload.length, count, index: i };
      const chunk = payload.subarray(i * size, Math.min(payload.length, (i + 1) * size));
      await this.data([{ rel, channel, id: reliable ? this.nextId++ : 0, seq, frag, payload: chunk }]);
      if (opts.between && i % (opts.pace ?? 64) === 63) await opts.between();
    }
  }

  /** Sends one DATA packet of commands (a fresh packet sequence number each time). */
  data(cmds: Cmd[], flags = 0): Promise<void> {
    return this.send(dataPacket(this.conn, this.seq++, cmds, flags));
  }

  /** Says goodbye. */
  bye(): Promise<void> {
    const d = Buffer.alloc(6);
    d[0] = T.DISCONNECT;
    d.writeUInt32LE(this.conn >>> 0, 2);
    return this.send(sealed(d));
  }
}

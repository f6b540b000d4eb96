/**
 * The receiving side. What NATS hands over is copied into a bounded inbound
 * queue (the client reads eagerly, so without a bound a process that stops
 * ticking would grow without end) and taken at the start of a tick, in
 * arrival order: heartbeats, acknowledgements and batches alike. A batch is
 * checked whole before any of it is delivered: its layout, that its sender is
 * a live member, its destination incarnation, its sequence number, its
 * schemas. Every fault is counted and reported, never thrown.
 */
import { ClusterProtocolError, PacketError, type TsageError } from '../errors.js';
import type { Message } from '../message.js';
import type { Members } from './members.js';
import { type Decoder, SenderSchemas } from './schema.js';
import { BEHIND, InboundStream, type StreamMode } from './streams.js';
import {
  type BatchKind,
  encodeAck,
  KIND_DIRECT,
  KIND_PUBLISH,
  KIND_QUEUE,
  parseBatch,
  readVarint,
  varintSize,
} from './wire.js';

/** Something received, waiting for the next tick. */
export interface Inbound {
  /** `'hb'`: a heartbeat; `'ack'`: an acknowledgement; else the kind of subject a batch came on. */
  readonly on: 'hb' | 'ack' | BatchKind;
  /** For a batch: the destination token of its subject (the group, or the message type). */
  readonly token: string;
  readonly data: Uint8Array;
  readonly reply: string | undefined;
  /** When it arrived (the `performance.now()` the link gave): heartbeats count from then, not from when a tick took them. */
  readonly at: number;
}

/** Cost of a queued item beyond its bytes. */
const ITEM_OVERHEAD = 96;

/** A bounded FIFO of what arrived. */
export class InboundQueue {
  private items: Inbound[] = [];
  private head = 0;
  bytes = 0;
  constructor(private readonly maxBytes: number) {}

  /** Queues a copy of `data`, which arrived `at`; false (nothing queued) when the bound would be passed. */
  push(on: Inbound['on'], token: string, data: Uint8Array, reply: string | undefined, at: number): boolean {
    const cost = data.length + ITEM_OVERHEAD;
    if (this.bytes + cost > this.maxBytes) return false;
    this.bytes += cost;
    // A copy (not `slice()`, which on a Node Buffer is a view): what is held is what is counted.
    this.items.push({ on, token, data: new Uint8Array(data), reply, at });
    return true;
  }

  /** When the oldest item still queued arrived (undefined when empty): everything that arrived before it was taken. */
  get oldestArrival(): number | undefined {
    return this.head === this.items.length ? undefined : this.items[this.head]!.at;
  }

  shift(): Inbound | undefined {
    if (this.head === this.items.length) return undefined;
    const it = this.items[this.head]!;
    this.items[this.head++] = undefined as unknown as Inbound;
    this.bytes -= it.data.length + ITEM_OVERHEAD;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    }
    return it;
  }

  get length(): number {
    return this.items.length - this.head;
  }
}

/** What the receiver needs from the rest of the cluster link. */
export interface ReceiverHost {
  queueMessage(msg: Message): boolean;
  /** Publishes an acknowledgement. */
  publish(subject: string, data: Uint8Array): void;
  isAckSubject(subject: string): boolean;
  /** Reports a fault of something received (`sender` is `'group@node'` when known). */
  fault(sender: string | undefined, error: TsageError): void;
  /** Reports messages found lost. */
  lost(info: { from: string; to: string; lost: number; reason: 'gap' }): void;
}

/** Streams kept per node incarnation (a sender process and destination each), and schema tables in all. */
const MAX_STREAMS = 4096;
/** Node incarnations whose streams are kept after they time out, in case they come back. */
const MAX_DEPARTED = 64;

const MODES: Record<BatchKind, StreamMode> = {
  [KIND_DIRECT]: 'whole',
  [KIND_PUBLISH]: 'from-first',
  [KIND_QUEUE]: 'share',
};
const KIND_NAMES: Record<BatchKind, string> = {
  [KIND_DIRECT]: 'direct',
  [KIND_QUEUE]: 'queue',
  [KIND_PUBLISH]: 'publish',
};

export class Receiver {
  /** Streams per node incarnation (`node#inc`), by `proc:kind:token`. */
  private readonly streams = new Map<string, Map<string, InboundStream>>();
  private readonly departed = new Map<string, Map<string, InboundStream>>();
  /** Schema verdicts per sender process (`node#inc:proc`). */
  private readonly schemas = new Map<string, SenderSchemas>();
  private readonly decoders: (Decoder | TsageError | undefined)[] = new Array(256).fill(undefined);
  readonly stats = {
    batchesReceived: 0,
    messagesReceived: 0,
    messagesLost: 0,
    batchesRejected: 0,
    messagesRejected: 0,
    batchesFromNonMembers: 0,
    messagesForOtherIncarnation: 0,
    batchesOutOfSequence: 0,
    acksSent: 0,
  };

  constructor(
    private readonly host: ReceiverHost,
    private readonly members: Members,
    private readonly self: { node: string; inc: number; group: string },
    private readonly maxAnnouncement: number,
    private readonly maxProperties: number,
  ) {}

  /** Takes one batch that came on a subject of kind `on` for `token`. */
  batch(on: BatchKind, token: string, data: Uint8Array, reply: string | undefined): void {
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    let b: ReturnType<typeof parseBatch>;
    try {
      b = parseBatch(data, dv, this.maxAnnouncement);
    } catch (err) {
      this.stats.batchesRejected++;
      this.host.fault(undefined, err as TsageError);
      return;
    }
    const from = `${b.group}@${b.node}`;
    if (b.kind !== on) {
      this.reject(from, `a ${KIND_NAMES[b.kind]} batch came on a ${KIND_NAMES[on]} subject`);
      return;
    }
    const g = this.members.group(b.node, b.group);
    if (g === undefined || g.inc !== b.srcInc || g.proc !== b.srcProc) {
      this.stats.batchesFromNonMembers++;
      this.host.fault(
        from,
        new ClusterProtocolError(
          `a batch from ${from} (incarnation ${b.srcInc}, process ${b.srcProc.toString(16)}) was refused: ${g === undefined ? 'no such live group' : g.inc !== b.srcInc ? `the live incarnation is ${g.inc}` : `the live process is ${g.proc.toString(16)}`}`,
        ),
      );
      return;
    }
    if (on === KIND_DIRECT && b.dstInc !== this.self.inc) {
      this.stats.messagesForOtherIncarnation += b.count;
      this.host.fault(
        from,
        new ClusterProtocolError(
          `${b.count} messages from ${from} for incarnation ${b.dstInc} of '${this.self.node}' were refused: this is incarnation ${this.self.inc}`,
        ),
      );
      return;
    }
    const stream = this.stream(b.node, b.srcInc, `${b.srcProc}:${on}:${token}`, on);
    const lost = stream.accept(b.seq, b.count);
    if (lost === BEHIND) {
      this.stats.batchesOutOfSequence++;
      this.host.fault(
        from,
        new ClusterProtocolError(
          `a batch from ${from} numbered ${b.seq} is behind the ${stream.expected} expected (a replay or a reordering): refused`,
        ),
      );
      return;
    }
    const to =
      on === KIND_DIRECT ? `${this.self.group}@${this.self.node}` : on === KIND_QUEUE ? `${token}@*` : token;
    if (lost > 0) {
      this.stats.messagesLost += lost;
      this.host.lost({ from, to, lost, reason: 'gap' });
    }
    if (b.count === 0) return;
    this.deliver(b, from, data, dv);
    if (on === KIND_QUEUE && reply !== undefined && this.host.isAckSubject(reply)) {
      this.host.publish(reply, encodeAck(b.seq));
      this.stats.acksSent++;
    }
  }

  private reject(from: string, why: string): void {
    this.stats.batchesRejected++;
    this.host.fault(from, new ClusterProtocolError(`malformed batch from ${from}: ${why}`));
  }

  private deliver(b: ReturnType<typeof parseBatch>, from: string, u8: Uint8Array, dv: DataView): void {
    const key = `${b.node}#${b.srcInc}:${b.srcProc}`;
    let table = this.schemas.get(key);
    if (table === undefined) {
      // Verdicts are cheap to reach again: past the bound, start over rather than grow.
      if (this.schemas.size >= MAX_STREAMS) this.schemas.clear();
      table = new SenderSchemas(`'${from}'`, this.maxProperties);
      this.schemas.set(key, table);
    }
    const decoders = this.decoders;
    for (const t of b.types) decoders[t.pt] = table.resolve(t.pt, t.fp, t.ann);
    let first: TsageError | undefined;
    let rejected = 0;
    let delivered = 0;
    let p = b.records;
    const host = this.host;
    // The decoder of the run's packet type, looked up again only when the type changes.
    let lastPt = -1;
    let dec: Decoder | undefined;
    let refusal: TsageError | undefined;
    try {
      for (let i = 0; i < b.count; i++) {
        // parseBatch walked every length: a one-byte varint is read here, a longer one by readVarint.
        let len = u8[p]!;
        if (len < 0x80) p++;
        else {
          len = readVarint(u8, p);
          p += varintSize(len);
        }
        const end = p + len;
        const pt = u8[p]!;
        if (pt !== lastPt) {
          lastPt = pt;
          const d = decoders[pt]!;
          dec = 'codec' in d ? d : undefined;
          refusal = dec === undefined ? (d as TsageError) : undefined;
        }
        if (dec === undefined) {
          first ??= refusal;
          rejected++;
          p = end;
          continue;
        }
        const m = new dec.cls() as Message;
        try {
          const e = dec.codec.decode(m, u8, dv, p + 1, end);
          if (e !== end) throw new PacketError(`${dec.name} from ${from}: ${end - e} bytes left over`);
        } catch (err) {
          first ??=
            err instanceof PacketError ? err : new PacketError(`${dec.name} from ${from}: ${String(err)}`);
          rejected++;
          p = end;
          continue;
        }
        m.sender = from;
        host.queueMessage(m);
        delivered++;
        p = end;
      }
    } finally {
      for (const t of b.types) decoders[t.pt] = undefined;
    }
    this.stats.batchesReceived++;
    this.stats.messagesReceived += delivered;
    if (rejected !== 0) {
      this.stats.messagesRejected += rejected;
      this.host.fault(from, first!);
    }
  }

  private stream(node: string, inc: number, key: string, on: BatchKind): InboundStream {
    const nk = `${node}#${inc}`;
    let map = this.streams.get(nk);
    if (map === undefined) {
      map = new Map();
      this.streams.set(nk, map);
    }
    let s = map.get(key);
    if (s === undefined) {
      // Past the bound the oldest goes (a restarted group's old process leaves its streams behind).
      if (map.size >= MAX_STREAMS) map.delete(map.keys().next().value!);
      s = new InboundStream(MODES[on]);
      map.set(key, s);
    }
    return s;
  }

  /** A node incarnation left: its schemas go; its streams are kept a while if it only went silent. */
  nodeLeft(node: string, inc: number, reason: 'left' | 'timeout' | 'replaced'): void {
    const nk = `${node}#${inc}`;
    for (const k of [...this.schemas.keys()]) if (k.startsWith(`${nk}:`)) this.schemas.delete(k);
    const map = this.streams.get(nk);
    this.streams.delete(nk);
    if (map !== undefined && reason === 'timeout') {
      this.departed.set(nk, map);
      if (this.departed.size > MAX_DEPARTED) this.departed.delete(this.departed.keys().next().value!);
    }
  }

  /** A node incarnation (re)joined: one that only went silent picks up its streams where they were. */
  nodeJoined(node: string, inc: number): void {
    const nk = `${node}#${inc}`;
    const map = this.departed.get(nk);
    if (map === undefined) return;
    this.departed.delete(nk);
    this.streams.set(nk, map);
  }

  /** This process stopped listening for a published type: a later subscription starts its streams afresh. */
  forgetType(type: string): void {
    const suffix = `:${KIND_PUBLISH}:${type}`;
    for (const map of this.streams.values())
      for (const k of [...map.keys()]) if (k.endsWith(suffix)) map.delete(k);
  }
}

/**
 * The sending side: one batch per destination, filled during a tick with the
 * compiled codec (each message packed straight into the batch's buffer) and
 * published as one NATS message when the tick ends. A batch that would pass
 * `maxBatchBytes` is published as it stands and a new one begun.
 */
import type { EncodeFn } from '../codec.js';
import { PacketError } from '../errors.js';
import type { Message, Schema } from '../message.js';
import { type WireSchema, wireSchema } from './schema.js';
import { AckTracker, OutboundStream } from './streams.js';
import {
  type BatchKind,
  headerSize,
  KIND_QUEUE,
  MAX_RECORD,
  type TypeEntry,
  varintSize,
  writeHeader,
  writeVarint,
} from './wire.js';

/** One destination: a subject, its stream numbering, and the batch being filled. */
export interface Destination {
  readonly subject: string;
  readonly kind: BatchKind;
  /** `'physics@sim-b'`, `'workers@*'`, or a message type name (publish): for events and errors. */
  readonly address: string;
  /** The destination node's incarnation (direct), else 0. */
  readonly dstInc: number;
  /** The node a direct destination is on, else undefined. */
  readonly node: string | undefined;
  readonly stream: OutboundStream;
  /** Packet types whose announcement went out on this stream. */
  readonly announced: Uint8Array;
  u8: Uint8Array;
  dv: DataView;
  /** Bytes of records in the batch, and how many. */
  len: number;
  count: number;
  /** The batch's type entries, and each packet type's index among them (-1: none yet). */
  types: TypeEntry[];
  readonly typeIndex: Int16Array;
  typeBytes: number;
  /**
   * Where a record may end at most with the buffer and the type entries as they are (three bytes
   * of slack kept free for a longer varint): the fast path of {@link Outbox.pack} checks only this.
   */
  room: number;
  lastSentAt: number;
  /** Whether a tail probe is owed once the stream goes quiet. */
  probeDue: boolean;
}

/** Where the sender is, for batch headers. */
export interface SenderIdentity {
  readonly node: string;
  readonly group: string;
  readonly inc: number;
  readonly proc: number;
}

export type Publish = (subject: string, data: Uint8Array, reply: string | undefined) => void;

const INITIAL = 4096;
const noEncoder: EncodeFn = () => -1;
/** Destinations kept for nodes that went silent. */
const MAX_DEPARTED = 4096;

export class Outbox {
  private readonly dests = new Map<string, Destination>();
  /** Destinations on nodes that went silent, by subject: a node back with the same incarnation resumes its streams. */
  private readonly departed = new Map<string, Destination>();
  /** Batches with records in them, to publish at the end of the tick. */
  private readonly filled: Destination[] = [];
  readonly acks = new AckTracker();
  /** Each packet type's wire schema, looked up without a WeakMap on the hot path. */
  private readonly wires: (WireSchema | undefined)[] = new Array(256).fill(undefined);
  /** The encoder of `wires[pt]`'s schema. */
  private readonly encoders: EncodeFn[] = new Array(256).fill(noEncoder);
  /** Record bytes packed and not yet published, over every destination. */
  unpublishedBytes = 0;
  readonly stats = { batchesSent: 0, messagesSent: 0, bytesSent: 0, tailProbesSent: 0 };
  /** Header bytes before the type entries. */
  private readonly nameBytes: number;

  constructor(
    private readonly me: SenderIdentity,
    private readonly publishFn: Publish,
    private readonly ackSubject: string,
    private readonly maxBatchBytes: number,
    private readonly now: () => number,
    /** Told of packed messages that will never leave because their stream was replaced. */
    private readonly onDiscard: (address: string, count: number) => void,
  ) {
    this.nameBytes = headerSize(me.node, me.group, []);
  }

  /** The destination for a subject, made on first use; a new incarnation of its node starts a new stream. */
  destination(
    subject: string,
    kind: BatchKind,
    address: string,
    dstInc: number,
    node: string | undefined,
  ): Destination {
    let d = this.dests.get(subject);
    if (d !== undefined && d.dstInc === dstInc) return d;
    const old = this.departed.get(subject);
    if (d === undefined && old !== undefined && old.dstInc === dstInc) {
      this.departed.delete(subject);
      this.dests.set(subject, old);
      return old;
    }
    if (d !== undefined) {
      const lost = this.discard(d);
      if (lost > 0) this.onDiscard(d.address, lost);
    }
    const u8 = new Uint8Array(INITIAL);
    d = {
      subject,
      kind,
      address,
      dstInc,
      node,
      stream: new OutboundStream(),
      announced: new Uint8Array(256),
      u8,
      dv: new DataView(u8.buffer),
      len: 0,
      count: 0,
      types: [],
      typeIndex: new Int16Array(256).fill(-1),
      typeBytes: 0,
      room: 0,
      lastSentAt: 0,
      probeDue: false,
    };
    this.setRoom(d);
    this.dests.set(subject, d);
    return d;
  }

  /** Recomputes `d.room` after its buffer or its type entries changed. */
  private setRoom(d: Destination): void {
    d.room = Math.min(d.u8.length, this.maxBatchBytes - this.nameBytes - d.typeBytes) - 3;
  }

  /** Forgets a destination and what its batch held; returns how many packed messages will now never leave. */
  discard(d: Destination): number {
    if (this.dests.get(d.subject) !== d) return 0;
    this.dests.delete(d.subject);
    const lost = d.count;
    this.unpublishedBytes -= d.len;
    const i = this.filled.indexOf(d);
    if (i >= 0) this.filled.splice(i, 1);
    d.len = 0;
    d.count = 0;
    for (const t of d.types) d.typeIndex[t.pt] = -1;
    d.types = [];
    d.typeBytes = 0;
    this.setRoom(d);
    return lost;
  }

  /**
   * Forgets every destination on a node that left; returns [address, messages never sent] for
   * those that held some. With `resumable` (it went silent), their stream numbers are kept a
   * while, so that if the same incarnation comes back its receivers count the gap, not refuse
   * a stream that started over.
   */
  discardNode(node: string, resumable: boolean): [string, number][] {
    const out: [string, number][] = [];
    for (const d of [...this.dests.values()]) {
      if (d.node !== node) continue;
      const n = this.discard(d);
      if (n > 0) out.push([d.address, n]);
      if (!resumable) continue;
      this.departed.set(d.subject, d);
      if (this.departed.size > MAX_DEPARTED) this.departed.delete(this.departed.keys().next().value!);
    }
    return out;
  }

  /** Packs a message into its destination's batch. A value that cannot be packed throws here and nothing is taken. */
  pack(d: Destination, msg: Message, schema: Schema): void {
    const pt = schema.packetType!;
    // The common case, a type already listed (so its wire schema and encoder are this class's)
    // and a record under 128 bytes that fits: one check before the codec writes in place, and
    // its one-byte length written after it.
    const p = d.len;
    if (d.typeIndex[pt]! >= 0 && p + 2 <= d.room && this.wires[pt]!.schema === schema) {
      const u8 = d.u8;
      u8[p + 1] = pt;
      const e = this.encoders[pt]!(msg, u8, d.dv, p + 2, d.room);
      if (e >= 0 && e - p <= 0x80) {
        u8[p] = e - p - 1;
        d.len = e;
        this.unpublishedBytes += e - p;
        if (++d.count === 1) this.filled.push(d);
        return;
      }
    }
    this.packSlow(d, msg, schema);
  }

  /** {@link pack} when the type is new to the batch, the record is long, or the batch must grow or go. */
  private packSlow(d: Destination, msg: Message, schema: Schema): void {
    const pt = schema.packetType!;
    let w = this.wires[pt];
    if (w === undefined || w.schema !== schema) {
      w = wireSchema(schema);
      this.wires[pt] = w;
      this.encoders[pt] = schema.codec().encode;
    }
    const encode = this.encoders[pt]!;
    for (;;) {
      if (d.typeIndex[pt]! < 0) this.addType(d, pt, w);
      // Where this record must end: within the batch's room, and within what a varint can say.
      const p = d.len;
      const cap = Math.min(this.maxBatchBytes - this.nameBytes - d.typeBytes - 3, p + 1 + MAX_RECORD);
      // Three bytes of slack stay free: a record's varint may be longer than the one byte reserved for it.
      const limit = Math.min(d.u8.length - 3, cap);
      let e = -1;
      if (p + 2 <= limit) {
        d.u8[p + 1] = pt;
        e = encode(msg, d.u8, d.dv, p + 2, limit);
      }
      if (e >= 0) {
        const len = e - (p + 1);
        const k = varintSize(len);
        if (k > 1) d.u8.copyWithin(p + k, p + 1, e);
        writeVarint(d.u8, p, len);
        d.len = p + k + len;
        d.count++;
        this.unpublishedBytes += k + len;
        if (d.count === 1) this.filled.push(d);
        return;
      }
      if (d.u8.length - 3 < cap) {
        this.grow(d, Math.min(Math.max(d.u8.length * 2, p + 1024), cap) + 3);
        continue;
      }
      if (d.count === 0) {
        throw new PacketError(
          `${schema.name}: packs to more than fits in one batch of maxBatchBytes (${this.maxBatchBytes}) for ${d.address}`,
        );
      }
      this.publish(d);
    }
  }

  private addType(d: Destination, pt: number, w: WireSchema): void {
    const ann = d.announced[pt] === 0 ? w.announcement : undefined;
    d.announced[pt] = 1;
    d.typeIndex[pt] = d.types.length;
    d.types.push({ pt, fp: w.fingerprint, ann });
    d.typeBytes += 7 + (ann?.length ?? 0);
    this.setRoom(d);
  }

  private grow(d: Destination, size: number): void {
    const u8 = new Uint8Array(size);
    u8.set(d.u8.subarray(0, d.len));
    d.u8 = u8;
    d.dv = new DataView(u8.buffer);
    this.setRoom(d);
  }

  /** Publishes every filled batch; returns how many. */
  flush(): number {
    const n = this.filled.length;
    for (let i = 0; i < this.filled.length; i++) this.publishBatch(this.filled[i]!);
    this.filled.length = 0;
    return n;
  }

  /** Whether any batch waits to be published. */
  get pending(): boolean {
    return this.filled.length !== 0;
  }

  private publish(d: Destination): void {
    const i = this.filled.indexOf(d);
    if (i >= 0) this.filled.splice(i, 1);
    this.publishBatch(d);
  }

  private publishBatch(d: Destination, probe = false): void {
    const header = headerSize(this.me.node, this.me.group, d.types);
    // A fresh buffer per batch: the client holds on to what it is given until it is written.
    const out = new Uint8Array(header + d.len);
    const dv = new DataView(out.buffer);
    const seq = d.stream.take(d.count);
    const h = writeHeader(
      out,
      dv,
      {
        kind: d.kind,
        srcInc: this.me.inc,
        srcProc: this.me.proc,
        dstInc: d.dstInc,
        seq,
        count: d.count,
        node: this.me.node,
        group: this.me.group,
      },
      d.types,
    );
    out.set(d.u8.subarray(0, d.len), h);
    const now = this.now();
    if (d.kind === KIND_QUEUE) this.acks.sent(seq, d.count, d.address, now);
    if (probe) this.stats.tailProbesSent++;
    else this.stats.batchesSent++;
    this.stats.messagesSent += d.count;
    this.stats.bytesSent += out.length;
    this.unpublishedBytes -= d.len;
    d.len = 0;
    d.count = 0;
    if (d.types.length !== 0) {
      for (const t of d.types) d.typeIndex[t.pt] = -1;
      d.types = [];
      d.typeBytes = 0;
      this.setRoom(d);
    }
    d.lastSentAt = now;
    d.probeDue = d.kind !== KIND_QUEUE;
    this.publishFn(d.subject, out, d.kind === KIND_QUEUE ? this.ackSubject : undefined);
  }

  /**
   * Sends an empty batch on every stream that has gone quiet for `quietMs`
   * since its last batch, carrying its next number: a receiver that missed the
   * stream's last batches learns of it now instead of never.
   */
  probe(quietMs: number): void {
    const now = this.now();
    for (const d of this.dests.values()) {
      if (!d.probeDue || d.count !== 0 || now - d.lastSentAt < quietMs) continue;
      this.publishBatch(d, true);
      d.probeDue = false;
    }
  }
}

/**
 * The TypeScript side of a shared-memory ring (docs/ring.md, docs/groups.md):
 * a writer that packs messages with the compiled codec straight into the
 * claimed span and publishes once per batch (its reader is `reader.ts`).
 * The Rust addon moves the positions; no native call is made per message.
 */
import { DC } from '../diagnostics.js';
import { BackpressureError, PacketError } from '../errors.js';
import type { Message, Schema } from '../message.js';
import { native } from '../native.js';
import { describeSchema, type SchemaDescriptor } from '../schema-table.js';
import {
  KIND_COMMIT,
  KIND_MESSAGE,
  KIND_SCHEMA,
  KIND_TICK,
  KIND_TICK_HELD,
  RECORD_HEADER,
  ROUTE_HEADER,
} from './wire.js';

const utf8 = new TextEncoder();

/**
 * Closes a ring handle whose RingWriter or RingReader was collected without `close()`: the
 * handle holds its region and `out` array alive, so without this backstop the mapping would
 * never be unmapped. `close()` is the way; this only makes forgetting it leak nothing for good.
 */
export const ringHandles = new FinalizationRegistry<number>((handle) => native().ringClose(handle));

type Pending =
  | { kind: 'schema'; desc: SchemaDescriptor }
  | { kind: 'raw'; recordKind: number; bytes: Uint8Array; progress: number };

let scratch = new Uint8Array(64 * 1024);
let scratchView = new DataView(scratch.buffer);

/** Packs messages into a ring; keeps a bounded, ordered backlog when the ring is full. */
export class RingWriter {
  private readonly u8: Uint8Array;
  private readonly dv: DataView;
  private readonly out = new Float64Array(4);
  private handle: number;
  /** Claimed span: records are written at `pos`, committed from `start`, up to `end`. */
  private start = 0;
  private pos = 0;
  private end = 0;
  private readonly backlog: Pending[] = [];
  private backlogHead = 0;
  /** Bytes of the messages in the backlog. */
  private queuedBytes = 0;
  private readonly announced: (SchemaDescriptor | undefined)[] = new Array(256).fill(undefined);
  /**
   * With `holdUntilFlush`: the region offset of the open tick's marker record, -1 while no tick
   * is open. Between ticks the span is hidden (`end` = `pos`, the real end kept in `spanEnd`), so
   * the first write of a tick takes the slow path, which writes the marker: the writes after it
   * pay nothing for it.
   */
  private tick = -1;
  private tickHeld = false;
  private spanEnd = 0;
  /**
   * The error of the native call that found the ring corrupt (its reader, the other process, can
   * write its positions and any byte of it): from then on nothing more is written into it, and
   * sends wait in the backlog, for a writer that replaces this one to {@link adopt}.
   */
  broken: Error | undefined;

  /**
   * @param region the mapped region (kept alive by the native handle)
   * @param maxRecord the ring's largest record payload
   * @param maxBacklog messages held when the ring is full before sends report backpressure
   * @param maxMessage largest packed message accepted
   * @param where names the destination in errors
   * @param holdUntilFlush publish only in {@link flush} (or a reader's `commitWith`), never when a
   *   span fills mid-tick: a group process uses this so its replies become visible together with
   *   its acknowledgement of what it read. Each tick's records then start with a marker; a tick
   *   that must publish early (a fragmented message streams as it is written) marks itself held
   *   and ends with a commit record, so the reader holds its records until then (docs/groups.md).
   * @param maxBacklogBytes bytes of messages held when the ring is full before sends report
   *   backpressure (as `maxBacklog` messages do)
   */
  constructor(
    region: ArrayBuffer,
    private readonly maxRecord: number,
    private readonly maxBacklog: number,
    private readonly maxMessage: number,
    private readonly where: string,
    private readonly holdUntilFlush = false,
    private readonly maxBacklogBytes = Number.POSITIVE_INFINITY,
  ) {
    this.u8 = new Uint8Array(region);
    this.dv = new DataView(region);
    this.handle = native().ringOpen(region, 0, this.out, maxMessage);
    ringHandles.register(this, this.handle, this);
  }

  /** Messages waiting in the backlog (not yet in the ring). */
  get backlogLength(): number {
    return this.backlog.length - this.backlogHead;
  }

  /** Bytes of the messages waiting in the backlog. */
  get backlogBytes(): number {
    return this.queuedBytes;
  }

  /** Whether the backlog is at one of its limits: a send now would throw {@link BackpressureError}. */
  get backlogFull(): boolean {
    return this.backlogLength >= this.maxBacklog || this.queuedBytes >= this.maxBacklogBytes;
  }

  /** The schemas announced on this ring so far (for a restarted reader). */
  announcedSchemas(): SchemaDescriptor[] {
    return this.announced.filter((d): d is SchemaDescriptor => d !== undefined);
  }

  /** The schema announced on this ring for a packet type, if any. */
  announcedAs(packetType: number): SchemaDescriptor | undefined {
    return this.announced[packetType];
  }

  /**
   * Takes over the backlog and the announced schemas of the writer of a ring this one replaces
   * (a group's ring that had to be abandoned): what waited there waits here, from its start, and
   * the new ring's reader is told the schemas at start, as a restarted one is.
   */
  adopt(old: RingWriter): void {
    for (let i = old.backlogHead; i < old.backlog.length; i++) {
      const item = old.backlog[i]!;
      this.backlog.push(item.kind === 'raw' ? { ...item, progress: 0 } : item);
    }
    this.queuedBytes += old.queuedBytes;
    for (let pt = 0; pt < 256; pt++) this.announced[pt] ??= old.announced[pt];
  }

  /**
   * Packs `msg` into the ring, or into the backlog if the ring is full. A
   * value that cannot be packed throws here, synchronously. Throws
   * {@link BackpressureError} when the backlog is at its limit: the message
   * is then not taken, and the caller should retry after ticking.
   */
  send(msg: Message, schema: Schema, dest: number, src: number): void {
    const queued = this.backlogLength !== 0;
    if (queued) this.checkRoom();
    const pt = schema.packetType!;
    if (this.announced[pt] === undefined) {
      // A class that cannot be packed (no types) throws here, before its schema is announced.
      schema.codec();
      this.announce(describeSchema(schema));
    }
    if (
      this.backlogLength === 0 &&
      (this.writeInPlace(msg, schema, dest, src) || this.openAndWrite(msg, schema, dest, src))
    )
      return;
    const packed = packToScratch(msg, schema, dest, src, this.maxMessage);
    this.sendBytes(packed);
  }

  /**
   * The first message of a tick finds the span hidden (`holdUntilFlush`): opens the tick, then
   * writes in place after all. Kept out of {@link send} so that stays small enough to inline.
   */
  private openAndWrite(msg: Message, schema: Schema, dest: number, src: number): boolean {
    if (this.tick >= 0 || !this.holdUntilFlush) return false;
    return this.openTick() && this.writeInPlace(msg, schema, dest, src);
  }

  /**
   * Writes a message record payload (route header first) that another group packed and main
   * checked: `record` is main's own copy, so it may be kept in the backlog as it is.
   */
  sendRelayed(desc: SchemaDescriptor, record: Uint8Array): void {
    if (this.backlogLength !== 0) this.checkRoom();
    if (this.announced[desc.packetType] === undefined) this.announce(desc);
    this.sendBytes(record, true);
  }

  private sendBytes(payload: Uint8Array, owned = false): void {
    const progress = this.backlogLength === 0 ? this.writeBytes(KIND_MESSAGE, payload, 0) : 0;
    if (progress < payload.length) {
      const bytes = owned ? payload : payload.slice();
      this.backlog.push({ kind: 'raw', recordKind: KIND_MESSAGE, bytes, progress });
      this.queuedBytes += bytes.length;
    }
  }

  private checkRoom(): void {
    if (this.backlogFull) {
      if (DC.groupBackpressure.hasSubscribers)
        DC.groupBackpressure.publish({
          ring: this.where,
          backlog: this.backlogLength,
          limit: this.maxBacklog,
          bytes: this.queuedBytes,
          limitBytes: this.maxBacklogBytes,
        });
      throw new BackpressureError(
        `${this.where}: the ring is full and ${this.backlogLength} messages (${this.queuedBytes} bytes) are waiting (maxBacklog ${this.maxBacklog}, maxBacklogBytes ${this.maxBacklogBytes}); tick and retry`,
      );
    }
  }

  private announce(desc: SchemaDescriptor): void {
    this.announced[desc.packetType] = desc;
    const bytes = utf8.encode(JSON.stringify(desc));
    if (this.backlogLength === 0 && this.writeBytes(KIND_SCHEMA, bytes, 0) === bytes.length) return;
    this.backlog.push({ kind: 'schema', desc });
  }

  /** Commits what was written and claims a span of at least `min` bytes (opening a tick first, when none is). */
  private renew(min: number): boolean {
    if (this.tick < 0 && this.holdUntilFlush) {
      if (!this.openTick()) return false;
      if (this.pos + min <= this.end) return true;
    }
    return this.claim(min);
  }

  /** Commits what was written (publishing it unless `holdUntilFlush`) and claims a span of at least `min` bytes. */
  private claim(min: number): boolean {
    let ok = false;
    if (this.broken === undefined) {
      try {
        ok = native().ringCommitClaim(this.handle, this.pos - this.start, min, this.holdUntilFlush ? 0 : 1);
      } catch (err) {
        this.broken = err as Error;
      }
    }
    if (ok) {
      this.start = this.pos = this.out[0]!;
      this.end = this.start + this.out[1]!;
    } else {
      this.start = this.pos = this.end = 0;
    }
    return ok;
  }

  /** Writes a record (fragments past `maxRecord`) from `progress` on; returns the new progress. */
  private writeBytes(kind: number, payload: Uint8Array, progress: number): number {
    const n = payload.length;
    if (n > this.maxRecord) return this.writeFragments(kind, payload, progress);
    if (this.pos + RECORD_HEADER + n > this.end && !this.renew(RECORD_HEADER + n)) return 0;
    const p = this.pos;
    this.u8.set(payload, p + RECORD_HEADER);
    this.dv.setUint32(p, n, true);
    this.dv.setUint32(p + 4, kind, true);
    this.pos = (p + RECORD_HEADER + n + 7) & ~7;
    return n;
  }

  /** Writes a large message as fragments; returns the new progress. */
  private writeFragments(kind: number, bytes: Uint8Array, progress: number): number {
    if (this.holdUntilFlush) {
      // The fragments are published as they are written, and everything of the tick before them:
      // mark the tick held first, while its marker is still unpublished.
      if (this.tick < 0 && !this.openTick()) return progress;
      this.markHeld();
    }
    if (this.broken !== undefined) return progress;
    try {
      // The native call claims spans itself (and publishes): hand it a clean state.
      native().ringCommitClaim(this.handle, this.pos - this.start, 0, 1);
      this.start = this.pos = this.end = 0;
      return native().ringWriteFragments(this.handle, kind, bytes, progress);
    } catch (err) {
      this.broken = err as Error;
      this.start = this.pos = this.end = 0;
      return progress;
    }
  }

  /** Starts a tick's records with a {@link KIND_TICK} marker; false when the ring has no room for it now. */
  private openTick(): boolean {
    this.end = this.spanEnd;
    this.spanEnd = 0;
    if (this.pos + RECORD_HEADER > this.end && !this.claim(RECORD_HEADER)) return false;
    this.dv.setUint32(this.pos, 0, true);
    this.dv.setUint32(this.pos + 4, KIND_TICK, true);
    this.tick = this.pos;
    this.pos += RECORD_HEADER;
    return true;
  }

  /** Turns the open tick's marker (not yet published) into {@link KIND_TICK_HELD}. */
  private markHeld(): void {
    if (this.tickHeld) return;
    this.dv.setUint32(this.tick + 4, KIND_TICK_HELD, true);
    this.tickHeld = true;
  }

  /**
   * Ends the open tick, if any: a held one with a {@link KIND_COMMIT} record. False (the tick
   * stays open) when there is no room for that record now; it is written by a later flush.
   */
  private closeTick(): boolean {
    if (this.tick < 0) return true;
    if (this.tickHeld) {
      if (this.pos + RECORD_HEADER > this.end && !this.claim(RECORD_HEADER)) return false;
      this.dv.setUint32(this.pos, 0, true);
      this.dv.setUint32(this.pos + 4, KIND_COMMIT, true);
      this.pos += RECORD_HEADER;
    }
    this.tick = -1;
    this.tickHeld = false;
    this.spanEnd = this.end;
    this.end = this.pos;
    return true;
  }

  /** Packs a message record straight into the claimed span; false when it does not fit there. */
  private writeInPlace(msg: Message, schema: Schema, dest: number, src: number): boolean {
    const p = this.pos;
    const body = p + RECORD_HEADER;
    const limit = Math.min(this.end, body + this.maxRecord);
    if (body + ROUTE_HEADER + 1 > limit) return false;
    const e = schema.codec().encode(msg, this.u8, this.dv, body + ROUTE_HEADER + 1, limit);
    if (e < 0) return false;
    this.dv.setUint16(body, dest, true);
    this.dv.setUint16(body + 2, src, true);
    this.u8[body + ROUTE_HEADER] = schema.packetType!;
    this.dv.setUint32(p, e - body, true);
    this.dv.setUint32(p + 4, KIND_MESSAGE, true);
    this.pos = (e + 7) & ~7;
    return true;
  }

  /**
   * Writes as much of the backlog as fits, in order, and publishes (ending the open tick, if any).
   * Returns whether the backlog is empty.
   */
  flush(): boolean {
    this.drain();
    this.closeTick();
    this.publish();
    return this.backlogLength === 0;
  }

  /**
   * Publishes what was written without ending the tick, which is marked held: the reader holds
   * its records until the tick is acknowledged with its commit record (`holdUntilFlush` only).
   */
  publishHeld(): void {
    if (this.tick >= 0) this.markHeld();
    this.publish();
  }

  private publish(): void {
    if (this.broken !== undefined) return;
    try {
      native().ringCommitClaim(this.handle, this.pos - this.start, 0, 1);
    } catch (err) {
      this.broken = err as Error;
      this.start = this.pos = this.end = 0;
      return;
    }
    this.start = this.pos;
  }

  /** Drains the backlog into the ring without publishing; returns bytes written but unpublished. */
  drain(): number {
    const q = this.backlog;
    while (this.backlogHead < q.length) {
      const item = q[this.backlogHead]!;
      if (item.kind === 'schema') {
        const bytes = utf8.encode(JSON.stringify(item.desc));
        if (this.writeBytes(KIND_SCHEMA, bytes, 0) < bytes.length) break;
      } else {
        item.progress = this.writeBytes(item.recordKind, item.bytes, item.progress);
        if (item.progress < item.bytes.length) break;
        this.queuedBytes -= item.bytes.length;
      }
      q[this.backlogHead++] = undefined as unknown as Pending;
    }
    if (this.backlogHead === q.length) {
      q.length = 0;
      this.backlogHead = 0;
    } else if (this.backlogHead > 1024 && this.backlogHead * 2 > q.length) {
      q.splice(0, this.backlogHead);
      this.backlogHead = 0;
    }
    return this.pos - this.start;
  }

  /**
   * @internal Ends the open tick and hands over the native handle and the bytes to commit, for a
   * publish together with a reader's release; undefined when the tick's commit record does not fit now.
   */
  takeUncommitted(): { handle: number; used: number } | undefined {
    if (!this.closeTick()) return undefined;
    const used = this.pos - this.start;
    this.start = this.pos;
    return { handle: this.handle, used };
  }

  /** Bytes published and not yet read in the ring (0 once closed): one native call, for the inspector. */
  fill(): number {
    return this.handle >= 0 ? native().ringFill(this.handle) : 0;
  }

  close(): void {
    if (this.handle >= 0) {
      ringHandles.unregister(this);
      native().ringClose(this.handle);
    }
    this.handle = -1;
  }
}

/** Packs a message record payload (route header, packet type, properties) into the shared scratch buffer. */
function packToScratch(
  msg: Message,
  schema: Schema,
  dest: number,
  src: number,
  maxMessage: number,
): Uint8Array {
  const codec = schema.codec();
  for (;;) {
    const e = codec.encode(msg, scratch, scratchView, ROUTE_HEADER + 1, scratch.length);
    if (e > maxMessage) {
      // The reader refuses (and fails on) a message over its limit: refuse it here, synchronously.
      throw new PacketError(
        `${schema.name}: packs to ${e} bytes with its route header, more than the ${maxMessage}-byte maximum message size`,
      );
    }
    if (e >= 0) {
      scratchView.setUint16(0, dest, true);
      scratchView.setUint16(2, src, true);
      scratch[ROUTE_HEADER] = schema.packetType!;
      return scratch.subarray(0, e);
    }
    if (scratch.length > maxMessage + ROUTE_HEADER + 1) {
      throw new PacketError(`${schema.name}: packs to more than the ${maxMessage}-byte maximum message size`);
    }
    scratch = new Uint8Array(scratch.length * 2);
    scratchView = new DataView(scratch.buffer);
  }
}

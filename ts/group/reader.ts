/**
 * The reading side of a shared-memory ring (docs/ring.md, docs/groups.md): a
 * reader that hands records over in place, bounded by lengths it reads once
 * (the other process may rewrite its memory at any time), and releases them
 * in batches, or together with a writer's publish.
 */
import { PacketError, RingError } from '../errors.js';
import { native } from '../native.js';
import type { SchemaDescriptor } from '../schema-table.js';
import { type RingWriter, ringHandles } from './ring.js';
import { RECORD_HEADER } from './wire.js';

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/**
 * Called for each record read: payload is u8[p, end). Returning `false` leaves
 * the record (and those after it) in the ring for a later read.
 */
export type RecordHandler = (
  kind: number,
  u8: Uint8Array,
  dv: DataView,
  p: number,
  end: number,
) => boolean | undefined;

const NO_WRITER = { handle: -1, used: 0 };

/** Reads records in place from a ring. */
export class RingReader {
  private readonly u8: Uint8Array;
  private readonly dv: DataView;
  private readonly out = new Float64Array(4);
  private handle: number;
  /** Bytes of the current run read but not yet released. */
  private held = 0;
  /** Whether the last read found the ring empty. */
  empty = true;
  /** A reassembled message {@link readAll}'s handler refused: offered again first, next time. */
  private waiting: { kind: number; u8: Uint8Array } | undefined;

  /**
   * @param region the mapped region (kept alive by the native handle)
   * @param maxRecord the ring's largest record payload, as this process laid it out or was told
   *   (never read back from the shared header)
   * @param maxMessage largest reassembled message accepted
   * @param where names the ring in errors ("group 'chefs' to main")
   */
  constructor(
    region: ArrayBuffer,
    private readonly maxRecord: number,
    maxMessage: number,
    private readonly where: string,
  ) {
    this.u8 = new Uint8Array(region);
    this.dv = new DataView(region);
    this.handle = native().ringOpen(region, 1, this.out, maxMessage);
    ringHandles.register(this, this.handle, this);
  }

  /**
   * Reads runs of records and releases each as it is done, until the ring is
   * empty, `maxRuns` runs were read, or the deadline passed. A handler that
   * throws leaves the records after the failing one in the ring; one that
   * returns false leaves that record and those after it (a reassembled
   * message, no longer in the ring, is kept here and offered first next time).
   */
  readAll(onRecord: RecordHandler, deadline: number | undefined, maxRuns = 64): void {
    const n = native();
    const waiting = this.waiting;
    if (waiting !== undefined) {
      this.waiting = undefined;
      if (
        onRecord(waiting.kind, waiting.u8, new DataView(waiting.u8.buffer), 0, waiting.u8.length) === false
      ) {
        this.waiting = waiting;
        return;
      }
    }
    let release = 0;
    for (let runs = 0; runs < maxRuns; runs++) {
      const r = n.ringReleasePoll(this.handle, release);
      release = 0;
      if (r === 0) return;
      if (r === 1) {
        release = this.readRun(onRecord);
        if (release < this.out[1]!) break;
      } else {
        // A reassembled message has left the ring: one the handler cannot take now waits here.
        const u8 = new Uint8Array(r);
        const kind = this.out[2]!;
        if (onRecord(kind, u8, new DataView(r), 0, u8.length) === false) {
          this.waiting = { kind, u8 };
          break;
        }
      }
      if (deadline !== undefined && performance.now() >= deadline) break;
    }
    if (release !== 0) n.ringSync(-1, 0, this.handle, release);
  }

  /**
   * Reads one run without releasing it (fragmented messages before it are
   * handled and released by the ring). The run is released by {@link commitWith},
   * together with the writer's publish, so that a process killed mid-tick
   * reads the same records again after a restart. Does nothing while a run is held.
   * Takes about `budgetBytes` at most, so that one tick's messages are few enough to die young.
   */
  readHeld(onRecord: RecordHandler, maxMessages = 64, budgetBytes = 256 * 1024): void {
    if (this.held !== 0) return;
    const n = native();
    this.empty = false;
    for (let i = 0; i < maxMessages; i++) {
      const r = n.ringReleasePoll(this.handle, 0);
      if (r === 0) {
        this.empty = true;
        return;
      }
      if (r === 1) {
        this.held = this.readRun(onRecord, budgetBytes);
        return;
      }
      const u8 = new Uint8Array(r);
      onRecord(this.out[2]!, u8, new DataView(r), 0, u8.length);
    }
  }

  /**
   * Publishes the writer's records and releases the held run, back to back. When the writer's tick
   * cannot be closed now (no room for its commit record), publishes its records held instead and
   * keeps the run, to be released by a later call; returns whether the run was released.
   */
  commitWith(writer: RingWriter | undefined): boolean {
    const w = writer === undefined ? NO_WRITER : writer.takeUncommitted();
    if (w === undefined) {
      writer!.publishHeld();
      return false;
    }
    native().ringSync(w.handle, w.used, this.handle, this.held);
    this.held = 0;
    return true;
  }

  /** Whether a run is held unreleased. */
  get holding(): boolean {
    return this.held !== 0;
  }

  /**
   * Reads the polled run (at most about `budget` bytes of it); returns the bytes read.
   *
   * The run is the other process's memory: it may rewrite a header after the native side
   * checked the run. So each header is read once, and the length read is checked against the
   * run before it bounds anything; the handler decodes within `[body, body + length)` only.
   */
  private readRun(onRecord: RecordHandler, budget = Number.POSITIVE_INFINITY): number {
    const off = this.out[0]!;
    const len = this.out[1]!;
    const runEnd = off + len;
    const u8 = this.u8;
    const dv = this.dv;
    let p = off;
    /** The end of the record being handled (so a handler that throws skips exactly it). */
    let next = off;
    const stop = off + Math.min(len, budget);
    const maxRecord = this.maxRecord;
    try {
      while (p < stop) {
        const n = dv.getUint32(p, true);
        const kind = dv.getUint32(p + 4, true);
        const body = p + RECORD_HEADER;
        if (n > runEnd - body || n > maxRecord) throw this.overrun(p, n, runEnd - body);
        next = body + ((n + 7) & ~7);
        if (onRecord(kind, u8, dv, body, body + n) === false) return p - off;
        p = next;
      }
      if (p < runEnd) return p - off;
    } catch (err) {
      throw this.failed(err, next - off);
    }
    return len;
  }

  /**
   * After a handler threw on the record ending `handled` bytes into the run: releases it and
   * those before it (the rest stay for later), and returns what to throw. Kept out of
   * {@link readRun} so that stays small enough to inline.
   */
  private failed(err: unknown, handled: number): unknown {
    this.held = 0;
    // A run that breaks the ring's framing cannot be released by record: leave it all.
    if (err instanceof RingError) return err;
    // The native side checks the headers it releases again: one rewritten meanwhile makes that a ring error.
    try {
      native().ringSync(-1, 0, this.handle, handled);
    } catch (releaseErr) {
      return new RingError(
        `${this.where}: ${(releaseErr as Error).message} (releasing a record whose handler failed: ${(err as Error)?.message ?? String(err)})`,
      );
    }
    return err;
  }

  private overrun(at: number, length: number, left: number): RingError {
    const why =
      length > left
        ? `past the end of the run the ring checked (${left} bytes left)`
        : `over the ring's largest record (${this.maxRecord})`;
    return new RingError(
      `${this.where}: RingReader: the record length at region offset ${at} is ${length}, ${why}: the record was rewritten after it was published`,
    );
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

/** Decodes a schema announcement record's JSON. */
export function readSchemaRecord(u8: Uint8Array, p: number, end: number): SchemaDescriptor {
  try {
    return JSON.parse(utf8Strict.decode(u8.subarray(p, end))) as SchemaDescriptor;
  } catch (err) {
    throw new PacketError('a schema announcement in the ring is not valid JSON', { cause: err });
  }
}

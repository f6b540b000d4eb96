/**
 * Messages of one peer waiting for their schema: a message of a packet type this process
 * does not register, whose announcement has not arrived yet (a tsage peer announces before
 * the first message, reliably and in order on its channel, so only a message sent in another
 * mode can overtake it, and only while the announcement is being resent).
 *
 * They are copied into one arena per peer, with their places in a typed index, so what they
 * cost is what is allocated ({@link Waiting.cost}): no object per message. The caller bounds
 * that per peer and for all peers together, and expires what waits too long.
 */

/** Index entries per message: start, end, packet type with the reliable flag, arrival time. */
const FIELDS = 4;
const RELIABLE = 0x100;

export class Waiting {
  private arena = new Uint8Array(0);
  private used = 0;
  private index = new Float64Array(0);
  /** Messages held. */
  count = 0;
  /** Of which sent in a reliable mode. */
  reliable = 0;

  /** Bytes allocated for what is held. */
  cost(): number {
    return this.arena.byteLength + this.index.byteLength;
  }

  /** What holding `len` more bytes would make {@link cost} at most. */
  costWith(len: number): number {
    const arena = this.used + len > this.arena.length ? Math.max(2 * this.arena.length, this.used + len) : 0;
    const index = this.count === this.index.length / FIELDS ? 2 * Math.max(16, this.count) * FIELDS * 8 : 0;
    return this.cost() + arena + index;
  }

  /** Holds a copy of `u8[p..end)`, a message of packet type `pt` that arrived at `now`. */
  hold(pt: number, u8: Uint8Array, p: number, end: number, reliable: boolean, now: number): void {
    const len = end - p;
    if (this.used + len > this.arena.length) {
      const a = new Uint8Array(Math.max(2 * this.arena.length, this.used + len));
      a.set(this.arena.subarray(0, this.used));
      this.arena = a;
    }
    if (this.count === this.index.length / FIELDS) {
      const x = new Float64Array(2 * Math.max(16, this.count) * FIELDS);
      x.set(this.index);
      this.index = x;
    }
    this.arena.set(u8.subarray(p, end), this.used);
    const i = this.count * FIELDS;
    this.index[i] = this.used;
    this.index[i + 1] = this.used + len;
    this.index[i + 2] = pt | (reliable ? RELIABLE : 0);
    this.index[i + 3] = now;
    this.used += len;
    this.count++;
    if (reliable) this.reliable++;
  }

  /** Arrival time of the oldest message held, or Infinity. */
  oldest(): number {
    return this.count === 0 ? Number.POSITIVE_INFINITY : this.index[3]!;
  }

  /**
   * Walks the messages in order: `visit(pt, bytes, reliable, arrived)` says whether each is done
   * with (taken or dropped: true) or still waits (false). Returns how many were done with.
   * The bytes are a view valid only during the call.
   */
  sweep(visit: (pt: number, bytes: Uint8Array, reliable: boolean, arrived: number) => boolean): number {
    let kept = 0;
    let at = 0;
    let done = 0;
    const n = this.count;
    for (let k = 0; k < n; k++) {
      const i = k * FIELDS;
      const start = this.index[i]!;
      const end = this.index[i + 1]!;
      const tag = this.index[i + 2]!;
      const arrived = this.index[i + 3]!;
      const reliable = (tag & RELIABLE) !== 0;
      if (visit(tag & 0xff, this.arena.subarray(start, end), reliable, arrived)) {
        done++;
        if (reliable) this.reliable--;
        continue;
      }
      // Kept: moved down over what was done with, in order.
      if (start !== at) this.arena.copyWithin(at, start, end);
      const j = kept * FIELDS;
      this.index[j] = at;
      this.index[j + 1] = at + (end - start);
      this.index[j + 2] = tag;
      this.index[j + 3] = arrived;
      at += end - start;
      kept++;
    }
    this.count = kept;
    this.used = at;
    if (kept === 0) this.clear();
    return done;
  }

  /** Drops everything and gives the memory back. */
  clear(): void {
    this.arena = new Uint8Array(0);
    this.index = new Float64Array(0);
    this.used = 0;
    this.count = 0;
    this.reliable = 0;
  }
}

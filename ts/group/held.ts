/**
 * Main's side of "nothing twice" for a group's replies (docs/groups.md): the
 * records of a tick that the group's process had to publish before it
 * acknowledged the input it was handling are copied out of the ring and held
 * here until the tick's commit record arrives. If the process dies first they
 * are dropped: its successor is handed the same input again and writes them
 * anew. Ticks that publish only with their acknowledgement (every tick whose
 * replies fit the ring and no record of which is fragmented) never come here.
 */
import { RingError } from '../errors.js';

/** What one held record is counted as beyond its bytes, so that tiny ones cannot pile up unbounded. */
const HELD_OVERHEAD = 64;

export class HeldTicks {
  /** Whether a held tick is open: its message records are held, not delivered. */
  holding = false;
  private held: Uint8Array[] = [];
  private heldBytes = 0;
  /** Records of committed ticks not yet delivered (a relay waiting for room), from `readyHead` on. */
  private ready: Uint8Array[] = [];
  private readyHead = 0;

  /**
   * @param limit most bytes held at once (with {@link HELD_OVERHEAD} per record)
   * @param where names the group in errors
   */
  constructor(
    private readonly limit: number,
    private readonly where: string,
  ) {}

  /** Whether records are delivered as they are read: no tick held, nothing committed still waiting. */
  get idle(): boolean {
    return !this.holding && this.readyHead === this.ready.length;
  }

  /** Whether committed records wait to be delivered (read nothing after them until they went). */
  get pending(): boolean {
    return this.readyHead < this.ready.length;
  }

  /** Holds a message record's payload (a copy the ring no longer owns); a RingError past the limit. */
  hold(payload: Uint8Array): void {
    const cost = payload.length + HELD_OVERHEAD;
    if (this.heldBytes + cost > this.limit) {
      throw new RingError(
        `${this.where} held more than maxHeldBytes (${this.limit}) of records in one unfinished tick`,
      );
    }
    this.held.push(payload);
    this.heldBytes += cost;
  }

  /**
   * A tick marker: a held tick (`held`) or an ordinary one opens. A tick still held then is one
   * whose process died before committing it (a live process commits a held tick before it opens
   * another): its records are dropped. Returns how many were.
   */
  open(held: boolean): number {
    const dropped = this.holding ? this.drop() : 0;
    this.holding = held;
    return dropped;
  }

  /** The held tick's commit record: its records become ready to deliver, in order. */
  commit(): void {
    if (!this.holding) throw new RingError(`${this.where} wrote a commit record with no held tick open`);
    if (this.readyHead === this.ready.length) {
      this.ready = this.held;
      this.readyHead = 0;
    } else {
      for (const r of this.held) this.ready.push(r);
    }
    this.held = [];
    this.heldBytes = 0;
    this.holding = false;
  }

  /**
   * Hands ready records to `deliver` in order; one it refuses (false: no room at its destination
   * now) stays, with those after it. A record is taken before `deliver` runs, so one that throws
   * is not delivered again. Returns whether every ready record went.
   */
  deliver(deliver: (payload: Uint8Array) => boolean): boolean {
    while (this.readyHead < this.ready.length) {
      const r = this.ready[this.readyHead]!;
      this.ready[this.readyHead++] = EMPTY;
      if (!deliver(r)) {
        this.ready[--this.readyHead] = r;
        return false;
      }
    }
    this.ready = [];
    this.readyHead = 0;
    return true;
  }

  /**
   * Drops what the open held tick holds (its process died) and returns how many records that was.
   * It stays open: the dead process's last records may still be in the ring; they are held as
   * they are read and dropped at the next tick marker (its successor's first).
   */
  drop(): number {
    const n = this.held.length;
    this.held = [];
    this.heldBytes = 0;
    return n;
  }
}

const EMPTY = new Uint8Array(0);

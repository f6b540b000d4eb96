/**
 * Sequence numbers per stream (one sender process to one destination), as
 * pure state machines: numbers in, verdicts out, no clock but the `now` they
 * are given. Numbers are u32 and compared wraparound-safe (ENet's way): a
 * difference under 2^31 is ahead, anything else is behind.
 */

/** How a receiver judges a stream's numbers. */
export type StreamMode =
  /** Direct (`group@node`): the receiver sees the whole stream from 0; a jump ahead is loss. */
  | 'whole'
  /** Published (`publish`): the receiver may subscribe mid-stream; from the first batch it sees, a jump ahead is loss. */
  | 'from-first'
  /** Queue (`group@*`): other members take batches too, so a jump ahead is not loss (the sender counts unacknowledged batches). */
  | 'share';

/** What a receiver makes of a batch's numbers. */
export const BEHIND = -1;

export class InboundStream {
  /** The number the next message should have; undefined until the first batch of a `from-first` or `share` stream. */
  private next: number | undefined;

  constructor(readonly mode: StreamMode) {
    this.next = mode === 'whole' ? 0 : undefined;
  }

  /**
   * Takes a batch of `count` messages starting at `seq`. Returns how many
   * messages were lost before it (0 or more), or {@link BEHIND} when it repeats
   * or precedes what was already taken (a replay or a reordering: the batch
   * must be dropped, and the stream is unchanged).
   */
  accept(seq: number, count: number): number {
    const end = (seq + count) >>> 0;
    if (this.next === undefined) {
      this.next = end;
      return 0;
    }
    const ahead = (seq - this.next) >>> 0;
    if (ahead >= 0x80000000) return BEHIND;
    this.next = end;
    return this.mode === 'share' ? 0 : ahead;
  }

  /** The number the next message should have (undefined before the first batch of a stream that starts anywhere). */
  get expected(): number | undefined {
    return this.next;
  }
}

/** A sender's numbering of one stream. */
export class OutboundStream {
  /** Number of the next message. */
  next = 0;

  /** Numbers `count` messages; returns the first one's number. */
  take(count: number): number {
    const first = this.next;
    this.next = (this.next + count) >>> 0;
    return first;
  }
}

interface Outstanding {
  count: number;
  at: number;
  destination: string;
}

/** Loss a sender found: batches to a queue that nobody acknowledged in time. */
export interface Unacknowledged {
  destination: string;
  batches: number;
  messages: number;
}

/**
 * Queue batches sent and not yet acknowledged, so that a batch that no member
 * took (lost, or no member left) is counted rather than silently gone.
 */
export class AckTracker {
  private readonly open = new Map<number, Outstanding>();

  /** Batches waiting for their acknowledgement. */
  get size(): number {
    return this.open.size;
  }

  /** Records a batch sent at `now`, keyed by its first message's number. */
  sent(seq: number, count: number, destination: string, now: number): void {
    this.open.set(seq, { count, at: now, destination });
  }

  /** Takes an acknowledgement; false when nothing was waiting for it (late, repeated, or forged). */
  acked(seq: number): boolean {
    return this.open.delete(seq);
  }

  /** Gives up on batches older than `timeoutMs`, per destination. Map order is send order, so this stops at the first young one. */
  expire(now: number, timeoutMs: number): Unacknowledged[] {
    if (this.open.size === 0) return [];
    const out = new Map<string, Unacknowledged>();
    for (const [seq, o] of this.open) {
      if (now - o.at < timeoutMs) break;
      this.open.delete(seq);
      let u = out.get(o.destination);
      if (u === undefined) {
        u = { destination: o.destination, batches: 0, messages: 0 };
        out.set(o.destination, u);
      }
      u.batches++;
      u.messages += o.count;
    }
    return [...out.values()];
  }

  /** Everything still open, as lost (the connection is closing). */
  drop(): Unacknowledged[] {
    return this.expire(Number.POSITIVE_INFINITY, 0);
  }
}

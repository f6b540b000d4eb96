/**
 * What tsage puts in ring records (see docs/groups.md): the record kinds above
 * the ring's own, the message record's route header, and the main process's
 * name and index in it. What a schema
 * announcement holds, and how a reader learns from it, is `../schema-table.ts`,
 * which the network uses too.
 */
import { RingError } from '../errors.js';

/** The main process's group name (`ActorManager.MAIN_GROUP`, as pysage's `PYSAGE_MAIN_GROUP`). */
export const MAIN_GROUP = '__MAIN_GROUP__';
/** The main process's group index in a message record's route header. */
export const MAIN_INDEX = 0;

/** Record header bytes: u32 payload length, u32 kind (native endianness). */
export const RECORD_HEADER = 8;
/** A packed message: u16 destination group, u16 source group, then the pysage packet. */
export const KIND_MESSAGE = 16;
/** A schema announcement: UTF-8 JSON of a `SchemaDescriptor` (`../schema-table.ts`). */
export const KIND_SCHEMA = 17;
/**
 * Opens the records one tick of a group's process writes (no payload). They become visible
 * together with the acknowledgement of the input the tick handled, so main delivers them as they come.
 */
export const KIND_TICK = 18;
/**
 * What {@link KIND_TICK} becomes when some of the tick's records must be published before its
 * acknowledgement (a message larger than a ring record streams through the ring as it is written,
 * or the ring filled up): main holds the tick's records until {@link KIND_COMMIT}, and drops them
 * if the process dies first (its successor handles the same input again).
 */
export const KIND_TICK_HELD = 19;
/** Closes a held tick; published together with the acknowledgement of the tick's input (no payload). */
export const KIND_COMMIT = 20;
/** Bytes before the packet in a message record's payload. */
export const ROUTE_HEADER = 4;

/** The error for a message record too short for its route header and packet type: `who` wrote it. */
export function shortMessage(who: string, length: number): RingError {
  return new RingError(
    `${who} wrote a message record of ${length} bytes, too short for its route header and packet type`,
  );
}

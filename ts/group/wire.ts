/**
 * What tsage puts in ring records (see docs/groups.md): the record kinds above
 * the ring's own, the message record's route header, and the main process's
 * name and index in it. What a schema
 * announcement holds, and how a reader learns from it, is `../schema-table.ts`,
 * which the network uses too.
 */

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
/** Bytes before the packet in a message record's payload. */
export const ROUTE_HEADER = 4;

/**
 * What tsage puts in ring records (see docs/groups.md): the record kinds above
 * the ring's own and the message record's route header. What a schema
 * announcement holds, and how a reader learns from it, is `../schema-table.ts`,
 * which the network uses too.
 */

/** Record header bytes: u32 payload length, u32 kind (native endianness). */
export const RECORD_HEADER = 8;
/** A packed message: u16 destination group, u16 source group, then the pysage packet. */
export const KIND_MESSAGE = 16;
/** A schema announcement: UTF-8 JSON of a `SchemaDescriptor` (`../schema-table.ts`). */
export const KIND_SCHEMA = 17;
/** Bytes before the packet in a message record's payload. */
export const ROUTE_HEADER = 4;

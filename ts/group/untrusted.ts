/**
 * What a group wrote into its ring is input, as a datagram is (docs/security.md, "What a group
 * can and cannot do"): which errors in reading it are that group's fault, and the checks main
 * makes before it passes a group's message on to another group. Main relays a message without
 * giving it to any actor, but it no longer passes it on unread: it copies the record out of the
 * sender's ring first (so the sender cannot change it afterwards), decodes the copy once with the
 * schema the sender announced, and sets the source in its route header itself.
 */
import { type Codec, compileCodec } from '../codec.js';
import { PacketError, PacketTypeError, PeerProtocolError, RingError, TsageError } from '../errors.js';
import type { Decoder, SchemaDescriptor, SchemaTable } from '../schema-table.js';
import { ROUTE_HEADER } from './wire.js';

/** The codes of the errors that reading what another process wrote can raise. */
const INPUT_CODES = new Set([
  'ERR_TSAGE_RING',
  'ERR_TSAGE_PACKET',
  'ERR_TSAGE_PACKET_TYPE',
  'ERR_TSAGE_WRONG_MESSAGE_TYPE',
  'ERR_TSAGE_INVALID_PROPERTY',
]);

/**
 * The error as the writer's fault, if it is one: a tsage error about the bytes (the native
 * ring's errors, plain errors with a `code`, become a {@link RingError} naming `where`).
 * Anything else (an application's unpack hook that throws, say) is not, and is rethrown.
 */
export function inputFault(err: unknown, where: string): TsageError | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !INPUT_CODES.has(code)) return undefined;
  if (err instanceof TsageError) return err;
  return new RingError(`${where}: ${(err as Error).message}`, { cause: err });
}

/**
 * Learns a schema announcement from the ring. Learning runs no application code, so whatever it
 * throws is the announcement's fault: an error that is not a tsage error already, or the
 * `PeerProtocolError` a table throws for a malformed one (a network peer's violation), becomes a
 * {@link PacketTypeError} naming who announced it.
 */
export function learnAnnounced(table: SchemaTable, d: SchemaDescriptor, who: string): void {
  try {
    table.learn(d);
  } catch (err) {
    if (err instanceof PeerProtocolError) throw new PacketTypeError(err.message, { cause: err });
    if (err instanceof TsageError) throw err;
    throw new PacketTypeError(`${who} announced a schema this process cannot use: ${String(err)}`, {
      cause: err,
    });
  }
}

/** Decoders with no `unpackX` hooks, to check a relayed message without running application code. */
const checkers = new WeakMap<Decoder, Codec>();
const NO_HOOKS: object = Object.freeze(Object.create(null));

function checker(dec: Decoder): Codec {
  let c = checkers.get(dec);
  if (c === undefined) {
    const d = dec.descriptor;
    c = compileCodec(d.name, d.properties, d.types, NO_HOOKS);
    checkers.set(dec, c);
  }
  return c;
}

/**
 * Main's copy of the message record `u8[p, end)` that group `src` sent to another group, checked:
 * its packet decodes with `dec` (the schema the sender announced) and ends where the record
 * does, and its route header names `src` as its source, whatever the sender wrote there.
 * Throws the {@link PacketError} that decoding raises.
 */
export function relayCopy(dec: Decoder, u8: Uint8Array, p: number, end: number, src: number): Uint8Array {
  const record = u8.slice(p, end);
  const dv = new DataView(record.buffer);
  const e = checker(dec).decode(Object.create(null), record, dv, ROUTE_HEADER + 1, record.length);
  if (e !== record.length) {
    throw new PacketError(
      `${dec.descriptor.name}: ${record.length - e} bytes left over after the last property`,
    );
  }
  dv.setUint16(2, src, true);
  return record;
}

/**
 * pysage's wire (`wire: 'pysage'`), what both transports share of it: the
 * send options it can honour, and decoding with this process's registry.
 *
 * On this wire a connection carries pysage's packed messages and nothing
 * else: over TCP each is a frame (a 4-byte big-endian length, then the
 * message), over UDP each is one datagram (over netcode, one payload packet's
 * payload: a secure connection). Nothing announces schemas, so a
 * received packet type decodes with the class registered for it here; one
 * that is not registered, or bytes that do not decode, are the peer's fault
 * (a `'peerError'`), and the rest of its stream is unaffected.
 */
import { InvalidOption, PacketError, PacketTypeError } from '../errors.js';
import { type Message, type Reliability, type Schema, schemaForPacketType } from '../message.js';
import { RELIABILITY_CODES, type SendOptions, type TransportKind } from './options.js';

/** Classes whose own `channel` and `reliability` were found fit for the pysage wire, per transport. */
const checked: Record<TransportKind, WeakSet<Schema>> = { udp: new WeakSet(), tcp: new WeakSet() };

const RELIABLE_ORDERED = RELIABILITY_CODES['reliable-ordered'];
const UNRELIABLE = RELIABILITY_CODES.unreliable;

/**
 * Channel and reliability of a send on the pysage wire (`channel << 3 | reliability`), or
 * `InvalidOption` naming the option it cannot honour: it has one stream, so no channel but 0;
 * over UDP it is pysage's unreliable datagrams, so no reliability but `'unreliable'` (its default
 * there). Over TCP every mode is delivered reliably and in order, as on tsage's TCP.
 */
export function pysageParams(schema: Schema, opts: SendOptions | undefined, kind: TransportKind): number {
  const own = checked[kind];
  if (opts === undefined && own.has(schema)) return kind === 'udp' ? UNRELIABLE : RELIABLE_ORDERED;
  const cls = schema.cls;
  const channel = opts?.channel ?? cls.channel ?? 0;
  if (channel !== 0) {
    const where = opts?.channel !== undefined ? 'the send options' : `${schema.name}.channel`;
    throw new InvalidOption(
      `${schema.name}: channel ${String(channel)} (from ${where}): the pysage wire has no channels, only its one stream (leave channel unset or 0)`,
    );
  }
  const reliability: Reliability | undefined = opts?.reliability ?? cls.reliability;
  if (reliability !== undefined && RELIABILITY_CODES[reliability] === undefined) {
    throw new InvalidOption(
      `${schema.name}: reliability must be one of ${Object.keys(RELIABILITY_CODES).join(', ')}, got ${String(reliability)}`,
    );
  }
  if (kind === 'udp' && reliability !== undefined && reliability !== 'unreliable') {
    const where = opts?.reliability !== undefined ? 'the send options' : `${schema.name}.reliability`;
    throw new InvalidOption(
      `${schema.name}: reliability '${reliability}' (from ${where}): the pysage wire over UDP sends each message once in one datagram, with no acknowledgement or order ('unreliable', its default); use the tsage wire or TCP for '${reliability}'`,
    );
  }
  if (opts === undefined) own.add(schema);
  return kind === 'udp' ? UNRELIABLE : RELIABLE_ORDERED;
}

/**
 * Decodes one pysage packet (`u8[p..end)`: its packet-type byte, then its properties) with the
 * class this process registered for its packet type. Throws `PacketTypeError` for a packet type
 * with no class here, `PacketError` for bytes that do not decode as it.
 */
export function decodeLocal(from: string, u8: Uint8Array, dv: DataView, p: number, end: number): Message {
  const pt = u8[p]!;
  const schema = schemaForPacketType(pt);
  if (schema === undefined) {
    throw new PacketTypeError(
      `peer ${from} sent packet type ${pt}, which this process has not registered (the pysage wire carries no schemas: register the class with registerMessage or defineMessage)`,
    );
  }
  const m = new schema.cls() as Message;
  const e = schema.codec().decode(m, u8, dv, p + 1, end);
  if (e !== end) throw new PacketError(`${schema.name} from ${from}: ${end - e} bytes left over`);
  return m;
}

/**
 * Schema negotiation, shared by process groups and the network: the part of
 * a message class's schema that travels in an announcement, and the table in
 * which one receiver learns the schemas the other side announced, checks them
 * against its own classes, and finds the decoder for each packet type (a class
 * it never imported is built from the announcement).
 */
import { type Codec, compileCodec } from './codec.js';
import { PacketError, PacketTypeError } from './errors.js';
import { Message, type MessageClass, type Schema, schemaForPacketType } from './message.js';
import { parseBytes, parseTypes, type TypeCode } from './types.js';

/** The part of a schema that travels: enough to decode, and to detect disagreement. */
export interface SchemaDescriptor {
  name: string;
  packetType: number;
  properties: readonly string[];
  types: readonly TypeCode[];
  /** The properties the sender's class decodes as bytes (`Message.bytes`), when it has any: how a class built from this decodes them. */
  bytes?: readonly string[];
}

export function describeSchema(s: Schema): SchemaDescriptor {
  const d: SchemaDescriptor = {
    name: s.name,
    packetType: s.packetType!,
    properties: s.properties,
    types: (s.cls.types ?? []) as readonly TypeCode[],
  };
  if (s.cls.bytes !== undefined && s.cls.bytes.length !== 0) d.bytes = s.cls.bytes;
  return d;
}

/** Same name, properties and types? */
export function sameSchema(a: SchemaDescriptor, b: SchemaDescriptor): boolean {
  return (
    a.name === b.name &&
    a.packetType === b.packetType &&
    JSON.stringify(a.properties) === JSON.stringify(b.properties) &&
    JSON.stringify(a.types) === JSON.stringify(b.types)
  );
}

function show(d: SchemaDescriptor): string {
  return `${d.name}(${d.properties.map((p, i) => `${p}:${JSON.stringify(d.types[i])}`).join(', ')})`;
}

/** How a received packet type is decoded: a class and its codec. */
export interface Decoder {
  cls: MessageClass;
  codec: Codec;
  descriptor: SchemaDescriptor;
}

const foreignClasses = new Map<string, MessageClass>();

/** A class for a message type this process has no class for, built from its descriptor. */
function foreignClass(d: SchemaDescriptor): MessageClass {
  const key = JSON.stringify(d);
  let cls = foreignClasses.get(key);
  if (cls === undefined) {
    parseBytes(d.name, d.properties, parseTypes(d.name, d.properties, d.types), d.bytes);
    const c = class extends Message {
      static override properties = d.properties;
      static override types = d.types;
      static override bytes = d.bytes;
      static override messageType = d.name;
    };
    Object.defineProperty(c, 'name', { value: d.name });
    // No static packetType, so not registered under one: a later local class may claim it.
    // Its schema (and so its messageType) is installed by message.ts when it is first constructed.
    cls = c;
    foreignClasses.set(key, cls);
  }
  return cls;
}

/**
 * The schemas one consumer has learnt, per packet type. `where` names the
 * other side in errors ("group 'chefs'", "peer 127.0.0.1:4000").
 */
export class SchemaTable {
  private readonly decoders: (Decoder | undefined)[] = new Array(256).fill(undefined);

  constructor(private readonly where: () => string) {}

  /** Learns an announced schema, checking it against this process's class and any earlier announcement. */
  learn(d: SchemaDescriptor): void {
    if (
      typeof d !== 'object' ||
      d === null ||
      typeof d.name !== 'string' ||
      !Number.isInteger(d.packetType) ||
      d.packetType < 101 ||
      d.packetType > 255 ||
      !Array.isArray(d.properties) ||
      !Array.isArray(d.types)
    ) {
      throw new PacketTypeError(`${this.where()} announced a malformed schema: ${JSON.stringify(d)}`);
    }
    const known = this.decoders[d.packetType];
    if (known !== undefined) {
      if (!sameSchema(known.descriptor, d)) {
        throw new PacketTypeError(
          `${this.where()} announced packet type ${d.packetType} as ${show(d)} but it was ${show(known.descriptor)}`,
        );
      }
      return;
    }
    const local = schemaForPacketType(d.packetType);
    if (local !== undefined) {
      const mine = describeSchema(local);
      if (!sameSchema(mine, d)) {
        throw new PacketTypeError(
          `${this.where()} sends packet type ${d.packetType} as ${show(d)} but this process defines it as ${show(mine)}`,
        );
      }
      this.decoders[d.packetType] = { cls: local.cls, codec: local.codec(), descriptor: d };
      return;
    }
    const cls = foreignClass(d);
    this.decoders[d.packetType] = {
      cls,
      codec: compileCodec(d.name, d.properties, d.types, cls.prototype, d.bytes),
      descriptor: d,
    };
  }

  /** The decoder for a packet type, or undefined if it was never announced. */
  peek(packetType: number): Decoder | undefined {
    return this.decoders[packetType];
  }

  /** The decoder for a packet type; throws if it was never announced. */
  get(packetType: number): Decoder {
    const dec = this.decoders[packetType];
    if (dec === undefined) {
      throw new PacketTypeError(
        `${this.where()} sent packet type ${packetType} without announcing its schema`,
      );
    }
    return dec;
  }

  /** Every learnt descriptor (to hand a restarted process what its predecessor knew). */
  descriptors(): SchemaDescriptor[] {
    return this.decoders.filter((d): d is Decoder => d !== undefined).map((d) => d.descriptor);
  }
}

/** Decodes the packet of a message record (after its route header) into a new message. */
export function decodeMessage(
  table: SchemaTable,
  u8: Uint8Array,
  dv: DataView,
  p: number,
  end: number,
): Message {
  const dec = table.get(u8[p]!);
  const m = new dec.cls() as Message;
  const e = dec.codec.decode(m, u8, dv, p + 1, end);
  if (e !== end) {
    throw new PacketError(`${dec.descriptor.name}: ${end - e} bytes left over after the last property`);
  }
  return m;
}

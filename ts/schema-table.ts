/**
 * Schema negotiation, shared by process groups and the network: the part of a
 * message class's schema that travels in an announcement, and the table in
 * which one receiver keeps what one other side (a peer, a group) announced.
 *
 * The rules, for every user of a table:
 *
 * - **This process's registry is authoritative.** A packet type this process
 *   registers decodes with its own class, whether or not the other side
 *   announced it ({@link SchemaTable.peek}). An announcement never adds to the
 *   registry or changes it: it cannot take a packet type or a name this process
 *   uses, and `schemaForName` never returns a class built from one.
 * - **An announcement must agree** with this process's class for its packet
 *   type, and no announcement may use the name of one of this process's
 *   classes for another packet type. A disagreement is an error
 *   ({@link SchemaTable.learn} throws `PacketTypeError`), and the packet type is
 *   *refused* from then on for this table: its messages are not decoded
 *   ({@link SchemaTable.refused}), so they never reach a handler of a local
 *   class's name.
 * - **A type this process does not know** is decoded with a class built from
 *   the announcement (`foreignClass` in `message.ts`: dispatched by name, out of
 *   the registry). It lives in this table only, so it is released with the table
 *   (the peer or group that announced it leaving). Its codec is compiled on
 *   first use, and a table takes at most {@link TableLimits.maxForeign} of them.
 * - **Limits apply before work**: {@link parseAnnouncement} checks an
 *   announcement's size before it is parsed, its shape and number of properties
 *   before anything is built from it. Building a class costs about 40 µs a
 *   property (two compiled functions), so a caller may pass `budgeted` to
 *   {@link SchemaTable.peek}: then at most {@link BUILD_BUDGET} properties' worth
 *   is built between two calls of {@link newBuildBudget}, and a type past it is
 *   left for later ({@link SchemaTable.unbuilt}). The network does, once per
 *   service, so a burst of announcements cannot make one tick long.
 * - **What is thrown** is always the other side's fault, named by `where`:
 *   `PeerProtocolError` for an announcement that is malformed or past the
 *   limits (a network peer is disconnected for it; a group reports it as its
 *   `PacketTypeError`, see `group/untrusted.ts`), `PacketTypeError` for one
 *   that disagrees, `PacketError` for a message that does not decode.
 */
import type { Codec } from './codec.js';
import { PacketError, PacketTypeError, PeerProtocolError } from './errors.js';
import {
  foreignClass,
  type Message,
  type MessageClass,
  type Schema,
  schemaForName,
  schemaForPacketType,
  schemaOf,
} from './message.js';
import type { TypeCode } from './types.js';

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
  /** What was announced for it (or, for a local class nobody announced, its own schema). */
  descriptor: SchemaDescriptor;
  /** The class is this process's own (it never changes for the packet type then). */
  local: boolean;
}

/** Limits on what one table takes from the other side. */
export interface TableLimits {
  /** Bytes of one announcement (its JSON), checked before it is parsed. */
  maxBytes: number;
  /** Properties of one announced schema. */
  maxProperties: number;
  /** Schemas of types this process does not know, per table. */
  maxForeign: number;
}

/** The defaults: far more than any real schema needs. */
export const DEFAULT_TABLE_LIMITS: TableLimits = {
  maxBytes: 16 * 1024,
  maxProperties: 256,
  maxForeign: 64,
};

/** Longest type name or property name in an announcement. */
const MAX_NAME = 256;

/** Properties of classes built from announcements between two {@link newBuildBudget} calls (about 20 ms of work). */
export const BUILD_BUDGET = 512;
let buildLeft = BUILD_BUDGET;

/** Starts a new budget for building classes from announcements (see the module docs). */
export function newBuildBudget(): void {
  buildLeft = BUILD_BUDGET;
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/**
 * Parses the bytes of an announcement (UTF-8 JSON of a {@link SchemaDescriptor}) within
 * `limits`: its size before parsing, its shape and its number of properties after. Throws
 * {@link PeerProtocolError} naming what is wrong; `where` names the other side.
 */
export function parseAnnouncement(
  u8: Uint8Array,
  start: number,
  end: number,
  limits: TableLimits,
  where: string,
): SchemaDescriptor {
  if (end - start > limits.maxBytes) {
    throw new PeerProtocolError(
      `${where} announced a schema of ${end - start} bytes, more than the ${limits.maxBytes} allowed`,
    );
  }
  let d: unknown;
  try {
    d = JSON.parse(utf8Strict.decode(u8.subarray(start, end)));
  } catch (err) {
    throw new PeerProtocolError(
      `${where} announced a schema that is not UTF-8 JSON (${(err as Error).message})`,
    );
  }
  return checkDescriptor(d, limits, where);
}

function checkDescriptor(d: unknown, limits: TableLimits, where: string): SchemaDescriptor {
  const o = d as Partial<SchemaDescriptor> | null;
  const shown = (): string => JSON.stringify(d)?.slice(0, 200) ?? String(d);
  if (
    typeof o !== 'object' ||
    o === null ||
    typeof o.name !== 'string' ||
    o.name.length === 0 ||
    o.name.length > MAX_NAME ||
    !Number.isInteger(o.packetType) ||
    o.packetType! < 101 ||
    o.packetType! > 255 ||
    !Array.isArray(o.properties) ||
    !Array.isArray(o.types) ||
    o.properties.some((p) => typeof p !== 'string' || p.length > MAX_NAME) ||
    (o.bytes !== undefined &&
      (!Array.isArray(o.bytes) || o.bytes.some((p) => typeof p !== 'string' || p.length > MAX_NAME)))
  ) {
    throw new PeerProtocolError(`${where} announced a malformed schema: ${shown()}`);
  }
  const most = Math.max(o.properties.length, o.types.length, o.bytes?.length ?? 0);
  if (most > limits.maxProperties) {
    throw new PeerProtocolError(
      `${where} announced ${o.name} with ${most} properties, more than the ${limits.maxProperties} allowed`,
    );
  }
  return o as SchemaDescriptor;
}

/**
 * What one consumer knows of the packet types another side sends, per packet type.
 * `where` names the other side in errors ("group 'chefs'", "peer 127.0.0.1:4000").
 */
export class SchemaTable {
  /** Decoders found so far: local ones are final, foreign ones are checked again on use. */
  private readonly decoders: (Decoder | undefined)[] = new Array(256).fill(undefined);
  /** What the other side announced, per packet type. */
  private readonly announced: (SchemaDescriptor | undefined)[] = new Array(256).fill(undefined);
  /** Packet types refused after a disagreement: their messages are not decoded. */
  private readonly refusals: boolean[] = new Array(256).fill(false);
  private foreign = 0;
  readonly limits: TableLimits;

  constructor(
    private readonly where: () => string,
    limits: Partial<TableLimits> = {},
  ) {
    this.limits = { ...DEFAULT_TABLE_LIMITS, ...limits };
  }

  /**
   * Learns an announced schema, checking it against this process's class and any earlier
   * announcement. Throws `PeerProtocolError` for a malformed descriptor, and
   * `PacketTypeError` for one that disagrees (the packet type is refused from then on) or
   * one too many of types this process does not know.
   */
  learn(d: SchemaDescriptor): void {
    checkDescriptor(d, this.limits, this.where());
    const pt = d.packetType;
    if (this.refusals[pt]) return;
    const before = this.announced[pt];
    if (before !== undefined) {
      if (!sameSchema(before, d)) {
        this.refuse(pt);
        throw new PacketTypeError(
          `${this.where()} announced packet type ${pt} as ${show(d)} but it was ${show(before)}`,
        );
      }
      return;
    }
    const local = schemaForPacketType(pt);
    if (local !== undefined) {
      const mine = describeSchema(local);
      if (!sameSchema(mine, d)) {
        this.refuse(pt);
        throw new PacketTypeError(
          `${this.where()} sends packet type ${pt} as ${show(d)} but this process defines it as ${show(mine)}`,
        );
      }
      this.announced[pt] = d;
      return;
    }
    const named = schemaForName(d.name);
    if (named !== undefined) {
      this.refuse(pt);
      throw new PacketTypeError(
        `${this.where()} announced packet type ${pt} as ${show(d)}, but ${d.name} is this process's ${named.packetType === undefined ? 'local class' : `packet type ${named.packetType}`}`,
      );
    }
    if (this.foreign >= this.limits.maxForeign) {
      this.refuse(pt);
      throw new PacketTypeError(
        `${this.where()} announced ${show(d)}: more than ${this.limits.maxForeign} types this process does not know`,
      );
    }
    this.foreign++;
    this.announced[pt] = d;
  }

  private refuse(pt: number): void {
    this.refusals[pt] = true;
    this.decoders[pt] = undefined;
  }

  /** Whether messages of this packet type are refused (the other side's schema for it disagreed). */
  refused(packetType: number): boolean {
    return this.refusals[packetType]!;
  }

  /**
   * The decoder of this process's own class for a packet type, once {@link peek} has found it
   * (undefined otherwise): the receive path's lookup, which never builds nor throws.
   */
  local(packetType: number): Decoder | undefined {
    const d = this.decoders[packetType];
    return d?.local ? d : undefined;
  }

  /**
   * The decoder for a packet type: this process's class if it registers one (announced or
   * not), else the class built from the other side's announcement, else undefined (never
   * announced, or refused).
   */
  peek(packetType: number, budgeted = false): Decoder | undefined {
    const d = this.decoders[packetType];
    if (d?.local) return d;
    return this.find(packetType, d, budgeted);
  }

  /** Whether the packet type was announced (and not refused) but its class is not built yet. */
  unbuilt(packetType: number): boolean {
    return (
      this.announced[packetType] !== undefined &&
      this.decoders[packetType] === undefined &&
      !this.refusals[packetType]
    );
  }

  private find(pt: number, cached: Decoder | undefined, budgeted: boolean): Decoder | undefined {
    if (this.refusals[pt]) return undefined;
    const said = this.announced[pt];
    const local = schemaForPacketType(pt);
    if (local !== undefined) {
      // Registered since a foreign class was built for it, perhaps: the announcement must agree.
      const mine = describeSchema(local);
      if (said !== undefined && !sameSchema(mine, said)) {
        this.refuse(pt);
        return undefined;
      }
      const dec: Decoder = { cls: local.cls, codec: local.codec(), descriptor: said ?? mine, local: true };
      this.decoders[pt] = dec;
      return dec;
    }
    if (said === undefined) return undefined;
    if (cached !== undefined) {
      // A class of that name defined here since: the foreign one may no longer be used.
      if (schemaForName(said.name) === undefined) return cached;
      this.refuse(pt);
      return undefined;
    }
    const cost = said.properties.length + 1;
    if (budgeted && cost > buildLeft && buildLeft < BUILD_BUDGET) return undefined;
    buildLeft -= cost;
    let cls: MessageClass;
    try {
      cls = foreignClass(said.name, said.properties, said.types, said.bytes);
    } catch (err) {
      this.refuse(pt);
      throw err;
    }
    const dec: Decoder = { cls, codec: schemaOf(cls).codec(), descriptor: said, local: false };
    this.decoders[pt] = dec;
    return dec;
  }

  /** The decoder for a packet type; throws if there is none (never announced, or refused). */
  get(packetType: number): Decoder {
    const dec = this.peek(packetType);
    if (dec === undefined) {
      throw new PacketTypeError(
        this.refusals[packetType]
          ? `${this.where()} sent packet type ${packetType}, whose schema it announced in disagreement with this process's`
          : `${this.where()} sent packet type ${packetType} without announcing its schema`,
      );
    }
    return dec;
  }

  /** Every announced descriptor (to hand a restarted process what its predecessor knew). */
  descriptors(): SchemaDescriptor[] {
    return this.announced.filter((d, pt): d is SchemaDescriptor => d !== undefined && !this.refusals[pt]);
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
  const m = new dec.cls();
  const e = dec.codec.decode(m, u8, dv, p + 1, end);
  if (e !== end) {
    throw new PacketError(`${dec.descriptor.name}: ${end - e} bytes left over after the last property`);
  }
  return m;
}

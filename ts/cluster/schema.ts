/**
 * Schemas across the cluster. The local registry is authoritative: a packet
 * type decodes with the class this process registered for it, or not at all.
 * A batch names each packet type it carries with a fingerprint of the
 * sender's schema (and, the first time on a stream, the schema itself); a
 * fingerprint or an announcement that disagrees with the local class is the
 * sender's error, and so is a packet type this process never registered.
 * Nothing that arrives can add to or change the registry.
 *
 * This is the one module that uses the schema negotiation of `../schema-table.js`.
 */
import type { Codec } from '../codec.js';
import { PacketTypeError } from '../errors.js';
import type { MessageClass, Schema } from '../message.js';
import { schemaForPacketType, typesOf } from '../message.js';
import { describeSchema, type SchemaDescriptor, sameSchema } from '../schema-table.js';

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** FNV-1a over bytes. A fingerprint to tell honest disagreement, not a MAC. */
function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

/** What a schema looks like on the wire: its announcement and its fingerprint. */
export interface WireSchema {
  readonly schema: Schema;
  readonly announcement: Uint8Array;
  readonly fingerprint: number;
}

const wired = new WeakMap<Schema, WireSchema>();

/** The announcement and fingerprint of a local schema, computed once. */
export function wireSchema(schema: Schema): WireSchema {
  let w = wired.get(schema);
  if (w === undefined) {
    // Without `bytes`: how a class decodes its strings is its own affair, and the cluster only ever
    // decodes with local classes, so two nodes that differ in it still agree on the wire.
    const { bytes: _, ...wire } = describeSchema(schema);
    const announcement = utf8.encode(JSON.stringify(wire));
    w = { schema, announcement, fingerprint: fnv1a(announcement) };
    wired.set(schema, w);
  }
  return w;
}

function show(d: SchemaDescriptor): string {
  return `${d.name}(${d.properties.map((p, i) => `${p}:${JSON.stringify(d.types[i])}`).join(', ')})`;
}

/** How a packet type from one sender decodes: the local class and its codec. */
export interface Decoder {
  readonly cls: MessageClass;
  readonly codec: Codec;
  readonly name: string;
}

/** The verdicts on one sender process's packet types, each reached once. */
export class SenderSchemas {
  private readonly verdicts: (Decoder | PacketTypeError | undefined)[] = new Array(256).fill(undefined);

  constructor(
    /** Names the sender in errors: `"'physics@sim-b'"`. */
    private readonly who: string,
    private readonly maxProperties: number,
  ) {}

  /**
   * The decoder for `pt` as the sender describes it (fingerprint `fp`, and the
   * announcement if the batch carried one), or the error that rules it out.
   */
  resolve(pt: number, fp: number, ann: Uint8Array | undefined): Decoder | PacketTypeError {
    const known = this.verdicts[pt];
    if (known !== undefined && ann === undefined) return known;
    const local = schemaForPacketType(pt);
    if (local === undefined) {
      // Not kept: the class may be registered later.
      return new PacketTypeError(
        `${this.who} sends packet type ${pt}${ann === undefined ? '' : ` (${this.describe(ann)})`}, which this process has not registered`,
      );
    }
    const mine = wireSchema(local);
    let verdict: Decoder | PacketTypeError;
    if (ann !== undefined) verdict = this.check(pt, ann, local);
    else verdict = this.decoderOf(pt, local);
    if (!(verdict instanceof PacketTypeError) && fp !== mine.fingerprint) {
      verdict = new PacketTypeError(
        `${this.who} sends packet type ${pt} with schema fingerprint ${hex(fp)}, but this process defines it as ${show(describeSchema(local))} (fingerprint ${hex(mine.fingerprint)})`,
      );
    }
    if (verdict instanceof PacketTypeError || known === undefined) this.verdicts[pt] = verdict;
    return verdict;
  }

  private parse(ann: Uint8Array): SchemaDescriptor | string {
    let d: any;
    try {
      d = JSON.parse(utf8Strict.decode(ann));
    } catch (err) {
      return `an announcement that is not UTF-8 JSON (${(err as Error).message})`;
    }
    if (
      typeof d !== 'object' ||
      d === null ||
      typeof d.name !== 'string' ||
      !Number.isInteger(d.packetType) ||
      !Array.isArray(d.properties) ||
      !Array.isArray(d.types)
    ) {
      return 'a malformed announcement';
    }
    if (d.properties.length > this.maxProperties || d.types.length > this.maxProperties) {
      return `an announcement with more than ${this.maxProperties} properties`;
    }
    return d as SchemaDescriptor;
  }

  private describe(ann: Uint8Array): string {
    const d = this.parse(ann);
    return typeof d === 'string' ? d : show(d).slice(0, 200);
  }

  private check(pt: number, ann: Uint8Array, local: Schema): Decoder | PacketTypeError {
    const d = this.parse(ann);
    if (typeof d === 'string')
      return new PacketTypeError(`${this.who} announced packet type ${pt} with ${d}`);
    const mine = describeSchema(local);
    if (d.packetType !== pt || !sameSchema(mine, d)) {
      return new PacketTypeError(
        `${this.who} sends packet type ${pt} as ${show(d).slice(0, 200)} but this process defines it as ${show(mine)}`,
      );
    }
    return this.decoderOf(pt, local);
  }

  private decoderOf(pt: number, local: Schema): Decoder | PacketTypeError {
    if (typesOf(local.cls, local.properties) === undefined) {
      return new PacketTypeError(
        `${this.who} sends packet type ${pt}, but this process's ${local.name} has no static types to decode it with`,
      );
    }
    return { cls: local.cls, codec: local.codec(), name: local.name };
  }
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

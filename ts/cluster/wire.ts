/**
 * What travels on the cluster's subjects, as types: the batch (one NATS
 * message holding what one tick sent to one destination), heartbeats and
 * acknowledgements. Parsing checks every field before anything is used and
 * fails with a {@link ClusterProtocolError} naming it. Pure: no NATS here.
 *
 * A batch, big-endian:
 * ```
 *  0 u8  magic 0x74 ('t')       1 u8  version (1)
 *  2 u8  kind (1 direct, 2 queue, 3 publish)
 *  3 u8  number of type entries
 *  4 u32 source node incarnation   8 u32 source process
 * 12 u32 destination node incarnation (direct; else 0)
 * 16 u32 sequence number of the batch's first message in its stream
 * 20 u32 messages in the batch (0: a tail probe, sent when a stream goes quiet)
 * 24 u8 length, then the source node's name; u8 length, then the source group's name
 *    type entries: u8 packet type, u32 schema fingerprint, u16 announcement length, announcement (UTF-8 JSON)
 *    records: varint length, then the packet (packet type byte, then the codec's bytes)
 * ```
 */
import { ClusterProtocolError } from '../errors.js';
import { isToken } from './options.js';

export const MAGIC = 0x74;
export const VERSION = 1;
export const KIND_DIRECT = 1;
export const KIND_QUEUE = 2;
export const KIND_PUBLISH = 3;
export type BatchKind = typeof KIND_DIRECT | typeof KIND_QUEUE | typeof KIND_PUBLISH;
/** Bytes before the names. */
export const FIXED_HEADER = 24;
/** Bytes of a type entry before its announcement. */
export const TYPE_ENTRY = 7;
/** Longest record length a varint here may hold (4 bytes of 7 bits). */
export const MAX_RECORD = 2 ** 28 - 1;

/** The fixed part of a batch header. */
export interface BatchHeader {
  kind: BatchKind;
  srcInc: number;
  srcProc: number;
  dstInc: number;
  seq: number;
  count: number;
  node: string;
  group: string;
}

/** One type entry: which packet type, its schema's fingerprint, and the announcement if this batch carries it. */
export interface TypeEntry {
  pt: number;
  fp: number;
  ann: Uint8Array | undefined;
}

/** A parsed batch: its header, its type entries, and where its records start. */
export interface Batch extends BatchHeader {
  types: TypeEntry[];
  /** Offset of the first record. The records were walked: each has a length within the batch and a listed type. */
  records: number;
}

const utf8 = new TextEncoder();
const ascii = new TextDecoder('latin1');

function fail(field: string, why: string): never {
  throw new ClusterProtocolError(`malformed batch: ${field} ${why}`);
}

/** Bytes of a varint holding `n`. */
export function varintSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : 4;
}

/** Writes `n` (< 2^28) as a varint at `p`; returns the offset after it. */
export function writeVarint(u8: Uint8Array, p: number, n: number): number {
  while (n >= 0x80) {
    u8[p++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  u8[p++] = n;
  return p;
}

/** Header bytes for these names and type entries. */
export function headerSize(node: string, group: string, types: readonly TypeEntry[]): number {
  let n = FIXED_HEADER + 2 + node.length + group.length;
  for (const t of types) n += TYPE_ENTRY + (t.ann?.length ?? 0);
  return n;
}

/** Writes a header (names are ASCII tokens) at 0; returns the offset after it. */
export function writeHeader(
  u8: Uint8Array,
  dv: DataView,
  h: BatchHeader,
  types: readonly TypeEntry[],
): number {
  u8[0] = MAGIC;
  u8[1] = VERSION;
  u8[2] = h.kind;
  u8[3] = types.length;
  dv.setUint32(4, h.srcInc);
  dv.setUint32(8, h.srcProc);
  dv.setUint32(12, h.dstInc);
  dv.setUint32(16, h.seq);
  dv.setUint32(20, h.count);
  let p = FIXED_HEADER;
  u8[p++] = h.node.length;
  u8.set(utf8.encode(h.node), p);
  p += h.node.length;
  u8[p++] = h.group.length;
  u8.set(utf8.encode(h.group), p);
  p += h.group.length;
  for (const t of types) {
    u8[p] = t.pt;
    dv.setUint32(p + 1, t.fp);
    const n = t.ann?.length ?? 0;
    dv.setUint16(p + 5, n);
    p += TYPE_ENTRY;
    if (t.ann !== undefined) u8.set(t.ann, p);
    p += n;
  }
  return p;
}

function name(u8: Uint8Array, p: number, end: number, field: string): string {
  if (p >= end) fail(field, 'is missing');
  const n = u8[p]!;
  if (p + 1 + n > end) fail(field, `(${n} bytes) runs past the end`);
  const s = ascii.decode(u8.subarray(p + 1, p + 1 + n));
  if (!isToken(s)) fail(field, `${JSON.stringify(s)} is not a name`);
  return s;
}

/**
 * Parses and checks a batch. `maxAnnouncement` bounds an announcement's
 * bytes. Throws ClusterProtocolError naming the field at fault.
 */
export function parseBatch(u8: Uint8Array, dv: DataView, maxAnnouncement: number): Batch {
  const end = u8.length;
  if (end < FIXED_HEADER + 2) fail('header', `needs ${FIXED_HEADER + 2} bytes, the batch has ${end}`);
  if (u8[0] !== MAGIC) fail('magic', `is 0x${u8[0]!.toString(16)}, not 0x74`);
  if (u8[1] !== VERSION) fail('version', `is ${u8[1]}; this process reads version ${VERSION}`);
  const kind = u8[2]!;
  if (kind !== KIND_DIRECT && kind !== KIND_QUEUE && kind !== KIND_PUBLISH)
    fail('kind', `${kind} is unknown`);
  const nTypes = u8[3]!;
  const count = dv.getUint32(20);
  const node = name(u8, FIXED_HEADER, end, 'source node');
  let p = FIXED_HEADER + 1 + node.length;
  const group = name(u8, p, end, 'source group');
  p += 1 + group.length;
  const types: TypeEntry[] = [];
  const listed = new Uint8Array(256);
  for (let i = 0; i < nTypes; i++) {
    if (p + TYPE_ENTRY > end) fail(`type entry ${i}`, 'runs past the end');
    const pt = u8[p]!;
    if (pt < 101) fail(`type entry ${i}`, `has packet type ${pt}, below 101`);
    if (listed[pt] !== 0) fail(`type entry ${i}`, `lists packet type ${pt} twice`);
    listed[pt] = 1;
    const fp = dv.getUint32(p + 1);
    const n = dv.getUint16(p + 5);
    p += TYPE_ENTRY;
    if (n > maxAnnouncement) fail(`type entry ${i}`, `announcement of ${n} bytes exceeds ${maxAnnouncement}`);
    if (p + n > end) fail(`type entry ${i}`, `announcement of ${n} bytes runs past the end`);
    types.push({ pt, fp, ann: n === 0 ? undefined : u8.subarray(p, p + n) });
    p += n;
  }
  const records = p;
  for (let i = 0; i < count; i++) {
    if (p >= end) fail('count', `says ${count} messages, the batch ends after ${i}`);
    let len = u8[p++]!;
    if (len >= 0x80) {
      len &= 0x7f;
      let shift = 7;
      for (let k = 1; ; k++) {
        if (k === 4) fail(`record ${i}`, 'length is longer than 4 bytes');
        if (p >= end) fail(`record ${i}`, 'length runs past the end');
        const b = u8[p++]!;
        len += (b & 0x7f) * 2 ** shift;
        shift += 7;
        if (b < 0x80) break;
      }
    }
    if (len === 0) fail(`record ${i}`, 'is empty');
    if (p + len > end) fail(`record ${i}`, `of ${len} bytes runs past the end`);
    if (listed[u8[p]!] === 0)
      fail(`record ${i}`, `has packet type ${u8[p]}, not in the batch's type entries`);
    p += len;
  }
  if (p !== end) fail('count', `says ${count} messages, ${end - p} bytes follow them`);
  return {
    kind: kind as BatchKind,
    srcInc: dv.getUint32(4),
    srcProc: dv.getUint32(8),
    dstInc: dv.getUint32(12),
    seq: dv.getUint32(16),
    count,
    node,
    group,
    types,
    records,
  };
}

/** The value of the varint at `p` in a batch already checked by {@link parseBatch} (it takes {@link varintSize} bytes). */
export function readVarint(u8: Uint8Array, p: number): number {
  let b = u8[p]!;
  if (b < 0x80) return b;
  let n = b & 0x7f;
  let shift = 7;
  for (;;) {
    b = u8[++p]!;
    n += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return n;
    shift += 7;
  }
}

/** What a process says on the heartbeat subject (and in the roll call). */
export interface Heartbeat {
  /** `'hb'`: alive; `'bye'`: leaving; `'hello'`: joining (the roll call). */
  t: 'hb' | 'bye' | 'hello';
  node: string;
  inc: number;
  proc: number;
  /** `'main'`, or the process group's name. */
  group: string;
}

/** Longest heartbeat accepted. */
export const MAX_HEARTBEAT = 1024;

export function encodeHeartbeat(h: Heartbeat): Uint8Array {
  return utf8.encode(
    JSON.stringify({ v: 1, t: h.t, node: h.node, inc: h.inc, proc: h.proc, group: h.group }),
  );
}

const u32 = (v: unknown): v is number =>
  Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff;

/** Parses and checks a heartbeat; throws ClusterProtocolError naming the field at fault. */
export function parseHeartbeat(bytes: Uint8Array): Heartbeat {
  if (bytes.length > MAX_HEARTBEAT) {
    throw new ClusterProtocolError(`malformed heartbeat: ${bytes.length} bytes, more than ${MAX_HEARTBEAT}`);
  }
  let o: any;
  try {
    o = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw new ClusterProtocolError(`malformed heartbeat: not UTF-8 JSON (${(err as Error).message})`);
  }
  const bad = (field: string) => {
    throw new ClusterProtocolError(`malformed heartbeat: field '${field}' is ${JSON.stringify(o?.[field])}`);
  };
  if (typeof o !== 'object' || o === null || Array.isArray(o)) bad('(root)');
  if (o.v !== 1) bad('v');
  if (o.t !== 'hb' && o.t !== 'bye' && o.t !== 'hello') bad('t');
  if (!isToken(o.node)) bad('node');
  if (!u32(o.inc) || o.inc === 0) bad('inc');
  if (!u32(o.proc) || o.proc === 0) bad('proc');
  if (!isToken(o.group)) bad('group');
  return { t: o.t, node: o.node, inc: o.inc, proc: o.proc, group: o.group };
}

/** An acknowledgement of a queue batch: its sequence number. */
export function encodeAck(seq: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, seq);
  return b;
}

export function parseAck(bytes: Uint8Array): number {
  if (bytes.length !== 4)
    throw new ClusterProtocolError(`malformed acknowledgement: ${bytes.length} bytes, not 4`);
  return new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0);
}

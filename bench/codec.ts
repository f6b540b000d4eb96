/**
 * Codec: tsage's compiled codec (the zero-copy path groups and the network
 * use, and the allocating toBytes/fromBytes) against msgpackr and JSON, on a
 * small all-numeric record and a mixed one, with a hand-written DataView
 * codec as the plain baseline.
 */
import { isDeepStrictEqual } from 'node:util';
import { Packr } from 'msgpackr';
import { Message, type MessageClass, schemaOf } from '../ts/index.js';
import {
  type Case,
  fmtInt,
  fmtRate,
  fmtRatio,
  type Harness,
  type Measured,
  type Section,
  type Target,
} from './harness.js';

/** Records per timed run; a multiple of DISTINCT so every run does the same work. */
const N = 1 << 17;
/** Distinct records cycled through (so caches see some variety). */
const DISTINCT = 1024;

/** Where decoders put what they built, so no decoded object can be optimised away. */
let _kept: unknown;

/** (a) A game entity's position update. */
class Position extends Message {
  static override properties = ['id', 'tick', 'x', 'y'];
  static override types = ['i', 'i', 'f', 'd'];
  static override packetType = 201;
  declare id: number;
  declare tick: number;
  declare x: number;
  declare y: number;
}

/** (b) Ints, a short string and a small int array. */
class Mixed extends Message {
  static override properties = ['id', 'hp', 'name', 'path'];
  static override types = ['i', 'h', 'p', 'ai'];
  static override packetType = 202;
  declare id: number;
  declare hp: number;
  declare name: string;
  declare path: number[];
}

interface PositionObj {
  id: number;
  tick: number;
  x: number;
  y: number;
}
interface MixedObj {
  id: number;
  hp: number;
  name: string;
  path: number[];
}

function positionObj(k: number): PositionObj {
  // x is a multiple of 1/4 so it survives float32 exactly.
  return { id: 100_000 + k, tick: k * 7, x: k * 0.25 - 100, y: k * 1.1 + 0.5 };
}

function mixedObj(k: number): MixedObj {
  const path: number[] = [];
  for (let j = 0; j < 8; j++) path.push(((k + 1) * (j + 3) * 2654435761) | 0);
  return { id: 200_000 + k, hp: (k % 200) - 50, name: `unit-${k}`, path };
}

/** The hand-written codec of a record: what the compiled one competes with, minus validation. */
interface Plain<O> {
  enc(o: O, u8: Uint8Array, dv: DataView, p: number): number;
  dec(u8: Uint8Array, dv: DataView, p: number): [O, number];
}

const plainPosition: Plain<PositionObj> = {
  enc(o, _u8, dv, p) {
    dv.setInt32(p, o.id);
    dv.setInt32(p + 4, o.tick);
    dv.setFloat32(p + 8, o.x);
    dv.setFloat64(p + 12, o.y);
    return p + 20;
  },
  dec(_u8, dv, p) {
    return [
      { id: dv.getInt32(p), tick: dv.getInt32(p + 4), x: dv.getFloat32(p + 8), y: dv.getFloat64(p + 12) },
      p + 20,
    ];
  },
};

const plainMixed: Plain<MixedObj> = {
  enc(o, u8, dv, p) {
    dv.setInt32(p, o.id);
    dv.setInt16(p + 4, o.hp);
    const s = o.name;
    u8[p + 6] = s.length;
    p += 7;
    for (let j = 0; j < s.length; j++) u8[p + j] = s.charCodeAt(j);
    p += s.length;
    const a = o.path;
    dv.setInt32(p, a.length);
    p += 4;
    for (let j = 0; j < a.length; j++, p += 4) dv.setInt32(p, a[j]!);
    return p;
  },
  dec(u8, dv, p) {
    const id = dv.getInt32(p);
    const hp = dv.getInt16(p + 4);
    const len = u8[p + 6]!;
    p += 7;
    let name = '';
    for (let j = 0; j < len; j++) name += String.fromCharCode(u8[p + j]!);
    p += len;
    const n = dv.getInt32(p);
    p += 4;
    const path = new Array<number>(n);
    for (let j = 0; j < n; j++, p += 4) path[j] = dv.getInt32(p);
    return [{ id, hp, name, path }, p];
  },
};

interface Kind<O extends { id: number }> {
  label: string;
  cls: MessageClass<Message & O>;
  make(k: number): O;
  plain: Plain<O>;
}

const KINDS = [
  {
    label: 'small (i,i,f,d)',
    cls: Position,
    make: positionObj,
    plain: plainPosition,
  } satisfies Kind<PositionObj>,
  {
    label: 'mixed (i,h,p,ai×8)',
    cls: Mixed,
    make: mixedObj,
    plain: plainMixed,
  } satisfies Kind<MixedObj>,
] as Kind<{ id: number }>[];

/** The properties of a message as a plain object, for comparison. */
function propsOf(m: Message, cls: MessageClass): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const p of cls.properties) o[p] = (m as any)[p];
  return o;
}

function check(what: string, got: unknown, want: unknown): void {
  if (!isDeepStrictEqual(got, want)) {
    throw new Error(`${what}: decoded ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
  }
}

interface Row {
  codec: string;
  bytes: number;
  enc: Measured;
  dec: Measured;
}

function measureKind(h: Harness, kind: Kind<{ id: number }>): Row[] {
  const cls = kind.cls;
  const codec = schemaOf(cls).codec();
  const objs = Array.from({ length: DISTINCT }, (_, k) => kind.make(k));
  const msgs = objs.map((o) => new cls(o));
  const idSum = (N / DISTINCT) * objs.reduce((s, o) => s + o.id, 0);
  const mask = DISTINCT - 1;

  // tsage, zero-copy: records written back to back into one buffer, wrapping when full.
  const cap = 64 * 1024;
  const wu8 = new Uint8Array(cap);
  const wdv = new DataView(wu8.buffer);
  const encode = codec.encode;
  const decode = codec.decode;
  // The same records laid out back to back, for decoding.
  const sizes: number[] = [];
  const ru8 = new Uint8Array(DISTINCT * 256);
  const rdv = new DataView(ru8.buffer);
  let rend = 0;
  for (const m of msgs) {
    const e = encode(m, ru8, rdv, rend, ru8.length);
    if (e < 0) throw new Error(`${kind.label}: record does not fit 256 bytes`);
    sizes.push(e - rend);
    rend = e;
  }
  const encBytes = (N / DISTINCT) * rend;
  // Allocating path.
  const bytes = msgs.map((m) => m.toBytes());
  // msgpackr with shared structures: the record shape is sent once, then referenced by id.
  const packr = new Packr({ structures: [] });
  const packed = objs.map((o) => Uint8Array.prototype.slice.call(packr.pack(o)) as Buffer);
  // msgpackr with records defined inline in every message (no shared state needed).
  const packrInline = new Packr({ useRecords: true });
  const packedInline = objs.map((o) => Uint8Array.prototype.slice.call(packrInline.pack(o)) as Buffer);
  const json = objs.map((o) => Buffer.from(JSON.stringify(o)));
  const pu8 = new Uint8Array(DISTINCT * 256);
  const pdv = new DataView(pu8.buffer);
  let pend = 0;
  for (const o of objs) pend = kind.plain.enc(o, pu8, pdv, pend);

  // Every codec must give back what went in, for every distinct record.
  {
    let p = 0;
    let q = 0;
    for (let k = 0; k < DISTINCT; k++) {
      const want = objs[k]!;
      const m = new cls();
      p = decode(m, ru8, rdv, p, rend);
      check(`tsage decode #${k}`, propsOf(m, cls), want);
      check(`tsage fromBytes #${k}`, propsOf((cls as any).fromBytes(bytes[k]!), cls), want);
      check(`msgpackr structures #${k}`, packr.unpack(packed[k]!), want);
      check(`msgpackr inline records #${k}`, packrInline.unpack(packedInline[k]!), want);
      check(`JSON #${k}`, JSON.parse(json[k]!.toString()), want);
      const [o, next] = kind.plain.dec(pu8, pdv, q);
      check(`plain DataView #${k}`, o, want);
      q = next;
    }
    if (p !== rend || q !== pend)
      throw new Error(`${kind.label}: decoders stopped at ${p}/${q}, not the end`);
  }

  const sumLen = (bufs: readonly Uint8Array[]) => (N / DISTINCT) * bufs.reduce((s, b) => s + b.length, 0);
  const names = {
    tsage: 'tsage codec.encode/decode (zero-copy)',
    bytes: 'tsage toBytes/fromBytes (allocating)',
    packr: 'msgpackr Packr({ structures: [] })',
    inline: 'msgpackr Packr({ useRecords: true })',
    json: 'JSON.stringify/parse + Buffer',
    plain: 'hand-written DataView (baseline)',
  };
  const cases: Case[] = [
    {
      name: `${names.tsage} enc`,
      ops: N,
      run: () => {
        let p = 0;
        let total = 0;
        for (let k = 0; k < N; k++) {
          const m = msgs[k & mask]!;
          let e = encode(m, wu8, wdv, p, cap);
          if (e < 0) {
            p = 0;
            e = encode(m, wu8, wdv, 0, cap);
          }
          total += e - p;
          p = e;
        }
        return total;
      },
      expect: encBytes,
    },
    {
      name: `${names.tsage} dec`,
      ops: N,
      run: () => {
        let p = 0;
        let s = 0;
        for (let k = 0; k < N; k++) {
          if (p >= rend) p = 0;
          const m = new cls();
          p = decode(m, ru8, rdv, p, rend);
          s += m.id;
          _kept = m;
        }
        return s;
      },
      expect: idSum,
    },
    {
      name: `${names.bytes} enc`,
      ops: N,
      run: () => {
        let total = 0;
        for (let k = 0; k < N; k++) total += msgs[k & mask]!.toBytes().length;
        return total;
      },
      expect: sumLen(bytes),
    },
    {
      name: `${names.bytes} dec`,
      ops: N,
      run: () => {
        let s = 0;
        for (let k = 0; k < N; k++) {
          const m = (cls as any).fromBytes(bytes[k & mask]!);
          s += m.id;
          _kept = m;
        }
        return s;
      },
      expect: idSum,
    },
    {
      name: `${names.packr} enc`,
      ops: N,
      run: () => {
        let total = 0;
        for (let k = 0; k < N; k++) total += packr.pack(objs[k & mask]!).length;
        return total;
      },
      expect: sumLen(packed),
    },
    {
      name: `${names.packr} dec`,
      ops: N,
      run: () => {
        let s = 0;
        for (let k = 0; k < N; k++) {
          const o = packr.unpack(packed[k & mask]!);
          s += o.id;
          _kept = o;
        }
        return s;
      },
      expect: idSum,
    },
    {
      name: `${names.inline} enc`,
      ops: N,
      run: () => {
        let total = 0;
        for (let k = 0; k < N; k++) total += packrInline.pack(objs[k & mask]!).length;
        return total;
      },
      expect: sumLen(packedInline),
    },
    {
      name: `${names.inline} dec`,
      ops: N,
      run: () => {
        let s = 0;
        for (let k = 0; k < N; k++) {
          const o = packrInline.unpack(packedInline[k & mask]!);
          s += o.id;
          _kept = o;
        }
        return s;
      },
      expect: idSum,
    },
    {
      name: `${names.json} enc`,
      ops: N,
      run: () => {
        let total = 0;
        for (let k = 0; k < N; k++) total += Buffer.from(JSON.stringify(objs[k & mask]!)).length;
        return total;
      },
      expect: sumLen(json),
    },
    {
      name: `${names.json} dec`,
      ops: N,
      run: () => {
        let s = 0;
        for (let k = 0; k < N; k++) {
          const o = JSON.parse(json[k & mask]!.toString());
          s += o.id;
          _kept = o;
        }
        return s;
      },
      expect: idSum,
    },
    {
      name: `${names.plain} enc`,
      ops: N,
      run: () => {
        let p = 0;
        let total = 0;
        const enc = kind.plain.enc;
        for (let k = 0; k < N; k++) {
          if (p + 256 > cap) p = 0;
          const e = enc(objs[k & mask]!, wu8, wdv, p);
          total += e - p;
          p = e;
        }
        return total;
      },
      expect: (N / DISTINCT) * pend,
    },
    {
      name: `${names.plain} dec`,
      ops: N,
      run: () => {
        let p = 0;
        let s = 0;
        const dec = kind.plain.dec;
        for (let k = 0; k < N; k++) {
          if (p >= pend) p = 0;
          const r = dec(pu8, pdv, p);
          s += r[0].id;
          _kept = r[0];
          p = r[1];
        }
        return s;
      },
      expect: idSum,
    },
  ];

  h.note(`codec ${kind.label}`);
  const res = h.measure(cases);
  _kept = undefined;
  const get = (n: string) => res.find((r) => r.name === n)!;
  const avg = (total: number) => total / N;
  return [
    {
      codec: names.tsage,
      bytes: avg(encBytes),
      enc: get(`${names.tsage} enc`),
      dec: get(`${names.tsage} dec`),
    },
    {
      codec: names.bytes,
      bytes: avg(sumLen(bytes)),
      enc: get(`${names.bytes} enc`),
      dec: get(`${names.bytes} dec`),
    },
    {
      codec: names.packr,
      bytes: avg(sumLen(packed)),
      enc: get(`${names.packr} enc`),
      dec: get(`${names.packr} dec`),
    },
    {
      codec: names.inline,
      bytes: avg(sumLen(packedInline)),
      enc: get(`${names.inline} enc`),
      dec: get(`${names.inline} dec`),
    },
    {
      codec: names.json,
      bytes: avg(sumLen(json)),
      enc: get(`${names.json} enc`),
      dec: get(`${names.json} dec`),
    },
    {
      codec: names.plain,
      bytes: avg((N / DISTINCT) * pend),
      enc: get(`${names.plain} enc`),
      dec: get(`${names.plain} dec`),
    },
  ];
}

export async function run(h: Harness): Promise<Section> {
  const rows: string[][] = [];
  const targets: Target[] = [];
  for (const kind of KINDS) {
    const measured = measureKind(h, kind);
    const peer = measured[2]!;
    for (const r of measured) {
      rows.push([
        kind.label,
        r.codec,
        r.bytes.toFixed(1),
        fmtRate(r.enc.rate),
        fmtRate(r.dec.rate),
        fmtRatio(r.enc.rate / peer.enc.rate),
        fmtRatio(r.dec.rate / peer.dec.rate),
      ]);
    }
    const ts = measured[0]!;
    targets.push(
      { name: `codec ${kind.label}: tsage encode / msgpackr`, ratio: ts.enc.rate / peer.enc.rate, min: 2 },
      { name: `codec ${kind.label}: tsage decode / msgpackr`, ratio: ts.dec.rate / peer.dec.rate, min: 2 },
    );
  }
  return {
    title: `codec: ${fmtInt(N)} records per run, encode and decode`,
    intro: [
      `Each run cycles through ${DISTINCT} distinct records. tsage zero-copy: \`schemaOf(Cls).codec().encode(msg, u8, dv, p, end)\` back to back into one preallocated 64 KiB buffer (starting over when full), and \`decode(new Cls(), u8, dv, p, end)\` reading them back, a new message per record as a receiver does. The allocating path is \`msg.toBytes()\` (with its packet-type byte) and \`Cls.fromBytes(bytes)\`.`,
      'msgpackr, JSON and the baseline encode plain objects with the same fields. msgpackr: `packr.pack(obj)` and `packr.unpack(buf)` per record; with `structures: []` (shared structures, its fastest mode: the record shape is stored once in the Packr and referenced by id) and with `useRecords: true` alone (the shape inlined in every message). JSON: `Buffer.from(JSON.stringify(obj))` and `JSON.parse(buf.toString())` (Buffer, not TextEncoder/TextDecoder, being faster in Node). The baseline is a hand-written DataView encoder/decoder of the same wire layout without validation; its decoder builds plain objects. Every codec round-trips all records exactly before timing; every run checks a byte count (encode) or a sum of decoded ids (decode).',
    ],
    headers: [
      'record',
      'codec',
      'bytes/record',
      'encode records/s',
      'decode records/s',
      'encode vs msgpackr',
      'decode vs msgpackr',
    ],
    rows,
    notes: ['Ratios are against msgpackr with shared structures.'],
    targets,
  };
}

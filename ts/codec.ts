/**
 * Compiles a message class's schema, once, into an encoder and a decoder that
 * write into and read from a caller's Uint8Array/DataView at an offset. This is
 * the zero-copy path: groups and the network pack straight into ring and
 * datagram memory. The byte format is pysage's: network byte order, no padding.
 */
import { PacketError } from './errors.js';
import { type FieldType, fixedSize, parseTypes, type ScalarType } from './types.js';

/**
 * Writes a message's properties (not its packetType byte) at `p`; returns the
 * offset after them, or -1 when they do not fit before `end` (nothing useful
 * was written then: the caller retries with more room).
 */
export type EncodeFn = (m: any, u8: Uint8Array, dv: DataView, p: number, end: number) => number;
/** Reads properties into `m` from `p`; returns the offset after them. Throws {@link PacketError} when truncated. */
export type DecodeFn = (m: any, u8: Uint8Array, dv: DataView, p: number, end: number) => number;

export interface Codec {
  encode: EncodeFn;
  decode: DecodeFn;
  /** Encoded size of the properties when no property is variable-length, else -1. */
  fixedSize: number;
}

/** Longest `S` string or `aX` array accepted, in bytes: the default maximum message size. */
export const MAX_VARIABLE_BYTES = 16 * 1024 * 1024;

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** Capitalises a property name for its hook: `damage` -> `packDamage`/`unpackDamage`. */
export function hookName(prefix: 'pack' | 'unpack', prop: string): string {
  return prefix + prop.charAt(0).toUpperCase() + prop.slice(1);
}

function describe(v: unknown): string {
  if (typeof v === 'string') return v.length > 40 ? `a ${v.length}-character string` : JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (v instanceof Uint8Array) return `a ${v.length}-byte Uint8Array`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v === null) return 'null';
  if (v === undefined) return 'undefined (unset)';
  if (typeof v === 'object') return 'an object';
  return String(v);
}

const TYPE_WORDS: Record<string, string> = {
  b: "'b' (integer -128..127)",
  B: "'B' (integer 0..255)",
  h: "'h' (integer -32768..32767)",
  H: "'H' (integer 0..65535)",
  i: "'i' (32-bit signed integer)",
  l: "'l' (32-bit signed integer)",
  I: "'I' (32-bit unsigned integer)",
  L: "'L' (32-bit unsigned integer)",
  q: "'q' (64-bit signed integer, bigint)",
  Q: "'Q' (64-bit unsigned integer, bigint)",
  f: "'f' (32-bit float)",
  d: "'d' (64-bit float)",
  '?': "'?' (boolean)",
  c: "'c' (one character, code 0..255)",
};

function scalarCode(t: ScalarType): string {
  return t.kind === 'bool' ? '?' : t.kind === 'char' ? 'c' : t.code;
}

/** Writes UTF-8 or raw bytes with a length header of `hdr` bytes (1 or 4). */
function writeVar(
  u8: Uint8Array,
  dv: DataView,
  p: number,
  end: number,
  v: unknown,
  hdr: number,
  max: number,
): number {
  const q = p + hdr;
  let n: number;
  if (typeof v === 'string') {
    const len = v.length;
    if (q + len > end) {
      // Not even the ASCII length fits; UTF-8 is never shorter.
      if (len > max) return -2;
      return -1;
    }
    let j = 0;
    if (len < 64) {
      for (; j < len; j++) {
        const c = v.charCodeAt(j);
        if (c > 127) break;
        u8[q + j] = c;
      }
    }
    if (j === len) {
      n = len;
    } else {
      const room = Math.min(end - q, max + 4);
      const r = utf8.encodeInto(v, u8.subarray(q, q + room));
      if (r.read! < len) return r.written! >= max ? -2 : -1;
      n = r.written!;
    }
  } else if (v instanceof Uint8Array) {
    n = v.length;
    if (n > max) return -2;
    if (q + n > end) return -1;
    u8.set(v, q);
  } else {
    return -3;
  }
  if (n > max) return -2;
  if (hdr === 1) u8[p] = n;
  else dv.setInt32(p, n);
  return q + n;
}

/** Writes exactly `size` bytes, NUL-padded. */
function writeFixed(u8: Uint8Array, dv: DataView, p: number, end: number, v: unknown, size: number): number {
  if (p + size > end) return -1;
  let n: number;
  if (typeof v === 'string') {
    const len = v.length;
    // Short ASCII (the common case: tags, names, padding) without encodeInto's allocation.
    let j = 0;
    if (len <= size && len < 64) {
      for (; j < len; j++) {
        const c = v.charCodeAt(j);
        if (c > 127) break;
        u8[p + j] = c;
      }
    }
    if (j === len) {
      n = len;
    } else {
      const r = utf8.encodeInto(v, u8.subarray(p, p + size));
      if (r.read! < len) return -2;
      n = r.written!;
    }
  } else if (v instanceof Uint8Array) {
    if (v.length > size) return -2;
    u8.set(v, p);
    n = v.length;
  } else {
    return -3;
  }
  // Zero the rest eight bytes at a time (a byte loop or fill() costs several times more for short runs).
  let k = p + n;
  const stop = p + size;
  for (; k + 8 <= stop; k += 8) dv.setFloat64(k, 0);
  for (; k < stop; k++) u8[k] = 0;
  return p + size;
}

function readUtf8(u8: Uint8Array, p: number, n: number): string {
  if (n < 16) {
    // Short ASCII strings (most names and tags) in one call, as msgpackr does.
    let ascii = true;
    for (let j = 0; j < n; j++) {
      if (u8[p + j]! > 127) {
        ascii = false;
        break;
      }
    }
    if (ascii) return shortAscii(u8, p, n);
  }
  return utf8Strict.decode(u8.subarray(p, p + n));
}

const fcc = String.fromCharCode;

function shortAscii(b: Uint8Array, p: number, n: number): string {
  switch (n) {
    case 0:
      return '';
    case 1:
      return fcc(b[p]!);
    case 2:
      return fcc(b[p]!, b[p + 1]!);
    case 3:
      return fcc(b[p]!, b[p + 1]!, b[p + 2]!);
    case 4:
      return fcc(b[p]!, b[p + 1]!, b[p + 2]!, b[p + 3]!);
    case 5:
      return fcc(b[p]!, b[p + 1]!, b[p + 2]!, b[p + 3]!, b[p + 4]!);
    case 6:
      return fcc(b[p]!, b[p + 1]!, b[p + 2]!, b[p + 3]!, b[p + 4]!, b[p + 5]!);
    case 7:
      return fcc(b[p]!, b[p + 1]!, b[p + 2]!, b[p + 3]!, b[p + 4]!, b[p + 5]!, b[p + 6]!);
    case 8:
      return fcc(b[p]!, b[p + 1]!, b[p + 2]!, b[p + 3]!, b[p + 4]!, b[p + 5]!, b[p + 6]!, b[p + 7]!);
    default:
      return fcc.apply(null, b.subarray(p, p + n) as unknown as number[]);
  }
}

function readFixed(u8: Uint8Array, dv: DataView, p: number, size: number): string {
  // Strip the NUL padding from the end, a word at a time while it is all zero.
  let n = size;
  while (n >= 4 && dv.getUint32(p + n - 4) === 0) n -= 4;
  while (n > 0 && u8[p + n - 1] === 0) n--;
  return readUtf8(u8, p, n);
}

/** Code that checks scalar `x` and writes it at `p`, advancing `p`. `fail(why)` is an expression that throws. */
function encScalar(t: ScalarType, x: string, fail: (why: string) => string): string {
  const bad = fail(JSON.stringify(`does not fit type ${TYPE_WORDS[scalarCode(t)]}`));
  const room = `if (p + ${t.size} > end) return -1;`;
  switch (t.kind) {
    case 'bool':
      return `if (${x} !== true && ${x} !== false) ${bad}; ${room} u8[p++] = ${x} ? 1 : 0;`;
    case 'char':
      return `if (typeof ${x} !== 'string' || ${x}.length !== 1 || ${x}.charCodeAt(0) > 255) ${bad}; ${room} u8[p++] = ${x}.charCodeAt(0);`;
    case 'big': {
      const as = t.code === 'q' ? 'asIntN' : 'asUintN';
      const set = t.code === 'q' ? 'setBigInt64' : 'setBigUint64';
      return `if (typeof ${x} === 'number' && Number.isSafeInteger(${x})) ${x} = BigInt(${x}); if (typeof ${x} !== 'bigint' || BigInt.${as}(64, ${x}) !== ${x}) ${bad}; ${room} dv.${set}(p, ${x}); p += 8;`;
    }
    case 'num': {
      const checks: Record<string, string> = {
        b: `(${x} << 24 >> 24) !== ${x}`,
        B: `(${x} & 255) !== ${x}`,
        h: `(${x} << 16 >> 16) !== ${x}`,
        H: `(${x} & 65535) !== ${x}`,
        i: `(${x} | 0) !== ${x}`,
        l: `(${x} | 0) !== ${x}`,
        I: `(${x} >>> 0) !== ${x}`,
        L: `(${x} >>> 0) !== ${x}`,
        f: `typeof ${x} !== 'number' || (${x} > 3.4028234663852886e38 && ${x} !== Infinity) || (${x} < -3.4028234663852886e38 && ${x} !== -Infinity)`,
        d: `typeof ${x} !== 'number'`,
      };
      const writes: Record<string, string> = {
        b: `u8[p] = ${x};`,
        B: `u8[p] = ${x};`,
        h: `dv.setInt16(p, ${x});`,
        H: `dv.setUint16(p, ${x});`,
        i: `dv.setInt32(p, ${x});`,
        l: `dv.setInt32(p, ${x});`,
        I: `dv.setUint32(p, ${x});`,
        L: `dv.setUint32(p, ${x});`,
        f: `dv.setFloat32(p, ${x});`,
        d: `dv.setFloat64(p, ${x});`,
      };
      return `if (${checks[t.code]}) ${bad}; ${room} ${writes[t.code]} p += ${t.size};`;
    }
  }
}

/** Code that reads scalar t at `p` into `x`, advancing `p` (bounds already checked by the caller). */
function decScalar(t: ScalarType, x: string): string {
  switch (t.kind) {
    case 'bool':
      return `${x} = u8[p++] !== 0;`;
    case 'char':
      return `${x} = String.fromCharCode(u8[p++]);`;
    case 'big':
      return `${x} = dv.${t.code === 'q' ? 'getBigInt64' : 'getBigUint64'}(p); p += 8;`;
    case 'num': {
      const reads: Record<string, string> = {
        b: 'dv.getInt8(p)',
        B: 'u8[p]',
        h: 'dv.getInt16(p)',
        H: 'dv.getUint16(p)',
        i: 'dv.getInt32(p)',
        l: 'dv.getInt32(p)',
        I: 'dv.getUint32(p)',
        L: 'dv.getUint32(p)',
        f: 'dv.getFloat32(p)',
        d: 'dv.getFloat64(p)',
      };
      return `${x} = ${reads[t.code]}; p += ${t.size};`;
    }
  }
}

let tmpCounter = 0;

/** Fixed-size string fields up to this many bytes get the inline ASCII path. */
const INLINE_FIXED_MAX = 64;

/**
 * Code that, when `x` is a string of at most `size` ASCII characters, zeroes the
 * `size`-byte field at `p` with unrolled stores, writes the characters, and sets
 * `r` to the end of the field; otherwise leaves `r` at -4 (the caller then uses
 * `writeFixed`, which also handles bytes and UTF-8).
 */
function fixedAsciiInline(size: number, x: string, r: string): string {
  const zero: string[] = [];
  let k = 0;
  for (; k + 8 <= size; k += 8) zero.push(`dv.setFloat64(p + ${k}, 0, true);`);
  if (k + 4 <= size) {
    zero.push(`dv.setInt32(p + ${k}, 0, true);`);
    k += 4;
  }
  if (k + 2 <= size) {
    zero.push(`dv.setInt16(p + ${k}, 0, true);`);
    k += 2;
  }
  if (k < size) zero.push(`u8[p + ${k}] = 0;`);
  const len = `l${tmpCounter++}`;
  const j = `j${tmpCounter++}`;
  return `if (typeof ${x} === 'string' && ${x}.length <= ${size}) {
    if (p + ${size} > end) return -1;
    ${zero.join(' ')}
    const ${len} = ${x}.length; let ${j} = 0;
    for (; ${j} < ${len}; ${j}++) { const c = ${x}.charCodeAt(${j}); if (c > 127) break; u8[p + ${j}] = c; }
    if (${j} === ${len}) ${r} = p + ${size};
  }`;
}

function encField(t: FieldType, x: string, fail: (why: string) => string): string {
  switch (t.kind) {
    case 'num':
    case 'big':
    case 'bool':
    case 'char':
      return encScalar(t, x, fail);
    case 'fixstr':
    case 'pstr':
    case 'lstr': {
      const call =
        t.kind === 'fixstr'
          ? `writeFixed(u8, dv, p, end, ${x}, ${t.size})`
          : `writeVar(u8, dv, p, end, ${x}, ${t.kind === 'pstr' ? 1 : 4}, ${t.kind === 'pstr' ? 255 : MAX_VARIABLE_BYTES})`;
      const limit =
        t.kind === 'fixstr'
          ? `${t.size} bytes`
          : t.kind === 'pstr'
            ? '255 bytes'
            : `${MAX_VARIABLE_BYTES} bytes`;
      const code = t.kind === 'fixstr' ? `${t.size}s` : t.kind === 'pstr' ? 'p' : 'S';
      // A short fixed field holding short ASCII (padding, tags) is written inline: the field
      // zeroed with unrolled stores, then the characters; anything else goes through the helper.
      const r = `r${tmpCounter++}`;
      const inline = t.kind === 'fixstr' && t.size <= INLINE_FIXED_MAX ? fixedAsciiInline(t.size, x, r) : '';
      if (inline !== '') {
        return `{ let ${r} = -4; ${inline} if (${r} === -4) ${r} = ${call}; if (${r} === -1) return -1; if (${r} === -2) ${fail(`'is longer than the ${limit} type \\'${code}\\' holds'`)}; if (${r} === -3) ${fail(`'must be a string or Uint8Array for type \\'${code}\\''`)}; p = ${r}; }`;
      }
      return `{ const r = ${call}; if (r === -1) return -1; if (r === -2) ${fail(`'is longer than the ${limit} type \\'${code}\\' holds'`)}; if (r === -3) ${fail(`'must be a string or Uint8Array for type \\'${code}\\''`)}; p = r; }`;
    }
    case 'arr': {
      const n = `n${tmpCounter++}`;
      const e = `e${tmpCounter++}`;
      const j = `j${tmpCounter++}`;
      const elemFail = (why: string) => fail(`'element ' + ${j} + ': ' + ${why}`);
      return `{ if (!Array.isArray(${x}) && !(ArrayBuffer.isView(${x}) && !(${x} instanceof DataView))) ${fail(`'must be an array for type \\'a${scalarCode(t.elem)}\\''`)};
        const ${n} = ${x}.length; if (${n} * ${t.elem.size} > ${MAX_VARIABLE_BYTES}) ${fail(`'has ' + ${n} + ' elements, more than the ${MAX_VARIABLE_BYTES}-byte limit'`)};
        if (p + 4 + ${n} * ${t.elem.size} > end) return -1; dv.setInt32(p, ${n}); p += 4;
        for (let ${j} = 0; ${j} < ${n}; ${j}++) { let ${e} = ${x}[${j}]; ${encScalar(t.elem, e, elemFail)} } }`;
    }
    case 'tuple': {
      const parts = t.elems.map((et, k) => {
        const y = `t${tmpCounter++}`;
        return `{ let ${y} = ${x}[${k}]; ${encField(et, y, (why) => fail(`'[${k}] ' + ${why}`))} }`;
      });
      return `if (!Array.isArray(${x}) || ${x}.length !== ${t.elems.length}) ${fail(`'must be an array of ${t.elems.length} values for a tuple type'`)};\n${parts.join('\n')}`;
    }
  }
}

function decField(t: FieldType, x: string, trunc: string): string {
  switch (t.kind) {
    case 'num':
    case 'big':
    case 'bool':
    case 'char':
      return `if (p + ${t.size} > end) ${trunc}; ${decScalar(t, x)}`;
    case 'fixstr':
      return `if (p + ${t.size} > end) ${trunc}; ${x} = readFixed(u8, dv, p, ${t.size}); p += ${t.size};`;
    case 'pstr':
      return `{ if (p + 1 > end) ${trunc}; const n = u8[p++]; if (p + n > end) ${trunc}; ${x} = readUtf8(u8, p, n); p += n; }`;
    case 'lstr':
      return `{ if (p + 4 > end) ${trunc}; const n = dv.getInt32(p); p += 4; if (n < 0 || p + n > end) ${trunc}; ${x} = readUtf8(u8, p, n); p += n; }`;
    case 'arr': {
      const n = `n${tmpCounter++}`;
      const j = `j${tmpCounter++}`;
      const e = `e${tmpCounter++}`;
      return `{ if (p + 4 > end) ${trunc}; const ${n} = dv.getInt32(p); p += 4; if (${n} < 0 || p + ${n} * ${t.elem.size} > end) ${trunc};
        const a = new Array(${n}); for (let ${j} = 0; ${j} < ${n}; ${j}++) { let ${e}; ${decScalar(t.elem, e)} a[${j}] = ${e}; } ${x} = a; }`;
    }
    case 'tuple': {
      const parts = t.elems.map((et, k) => {
        const y = `t${tmpCounter++}`;
        return `{ let ${y}; ${decField(et, y, trunc)} ${x}[${k}] = ${y}; }`;
      });
      return `${x} = new Array(${t.elems.length});\n${parts.join('\n')}`;
    }
  }
}

/**
 * Compiles the codec of a message class. `proto` is consulted once for
 * `packX`/`unpackX` hooks; their presence is baked into the generated code.
 */
export function compileCodec(
  className: string,
  properties: readonly string[],
  types: unknown,
  proto: object,
): Codec {
  const fields = parseTypes(className, properties, types);
  const enc: string[] = [];
  const dec: string[] = [];
  fields.forEach((t, i) => {
    const prop = JSON.stringify(properties[i]);
    const pack = hookName('pack', properties[i]!);
    const unpack = hookName('unpack', properties[i]!);
    const hasPack = typeof (proto as any)[pack] === 'function';
    const hasUnpack = typeof (proto as any)[unpack] === 'function';
    const fail = (why: string) => `bad(${i}, v${i}, ${why})`;
    enc.push(
      `let v${i} = m[${prop}]; if (v${i} === undefined || v${i} === null) bad(${i}, v${i}, 'is unset');` +
        (hasPack ? ` v${i} = m[${JSON.stringify(pack)}](v${i});` : '') +
        `\n${encField(t, `v${i}`, fail)}`,
    );
    dec.push(
      `{ let v; ${decField(t, 'v', `trunc(${i})`)} m[${prop}] = ${hasUnpack ? `m[${JSON.stringify(unpack)}](v)` : 'v'}; }`,
    );
  });
  const bad = (i: number, v: unknown, why: string): never => {
    throw new PacketError(`${className}.${properties[i]}: ${describe(v)} ${why}`);
  };
  const trunc = (i: number): never => {
    throw new PacketError(
      `${className}.${properties[i]}: bytes end before the property does (truncated packet)`,
    );
  };
  /** A decoding error that is not ours: the strict UTF-8 decoder's becomes a PacketError naming the class. */
  const decodeFailed = (err: unknown): never => {
    if (err instanceof PacketError) throw err;
    if (err instanceof TypeError && /decode|encoded/i.test(err.message)) {
      throw new PacketError(`${className}: a string property holds bytes that are not valid UTF-8`, {
        cause: err,
      });
    }
    throw err;
  };
  const helpers = { bad, trunc, writeVar, writeFixed, readUtf8, readFixed, decodeFailed };
  const names = Object.keys(helpers);
  const values = Object.values(helpers);
  const encode = new Function(
    ...names,
    `return function encode_${safeIdent(className)}(m, u8, dv, p, end) {\n${enc.join('\n')}\nreturn p;\n};`,
  )(...values) as EncodeFn;
  // One function, its try/catch included: no wrapper call per message.
  const decode = new Function(
    ...names,
    `return function decode_${safeIdent(className)}(m, u8, dv, p, end) {\ntry {\n${dec.join('\n')}\n} catch (err) { decodeFailed(err); }\nreturn p;\n};`,
  )(...values) as DecodeFn;
  let total = 0;
  for (const t of fields) {
    const s = fixedSize(t);
    if (s < 0) {
      total = -1;
      break;
    }
    total += s;
  }
  return { encode, decode, fixedSize: total };
}

function safeIdent(s: string): string {
  return s.replace(/[^A-Za-z0-9_$]/g, '_');
}

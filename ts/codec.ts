/**
 * Compiles a message class's schema, once, into an encoder and a decoder that
 * write into and read from a caller's Uint8Array/DataView at an offset. This is
 * the zero-copy path: groups and the network pack straight into ring and
 * datagram memory. The byte format is pysage's: network byte order, no padding.
 */
import { PacketError } from './errors.js';
import { type FieldType, fixedSize, parseBytes, parseTypes, type ScalarType } from './types.js';

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
  c: "'c' (one ASCII character, or a 1-byte Uint8Array)",
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
      if (!isWellFormed(v)) return -5;
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
      if (!isWellFormed(v)) return -5;
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
  zeroFrom(u8, dv, p + n, p + size);
  return p + size;
}

/** Zeroes `[k, stop)` eight bytes at a time (a byte loop or fill() costs several times more for short runs). */
function zeroFrom(u8: Uint8Array, dv: DataView, k: number, stop: number): void {
  for (; k + 8 <= stop; k += 8) dv.setFloat64(k, 0);
  for (; k < stop; k++) u8[k] = 0;
}

/** Writes Python struct's `Np`: exactly `size` bytes, a length byte, at most `size - 1` bytes, NUL padding. */
function writePascal(u8: Uint8Array, dv: DataView, p: number, end: number, v: unknown, size: number): number {
  if (p + size > end) return -1;
  let n: number;
  if (typeof v === 'string') {
    if (!isWellFormed(v)) return -5;
    const r = utf8.encodeInto(v, u8.subarray(p + 1, p + size));
    if (r.read! < v.length) return -2;
    n = r.written!;
  } else if (v instanceof Uint8Array) {
    if (v.length > size - 1) return -2;
    u8.set(v, p + 1);
    n = v.length;
  } else {
    return -3;
  }
  u8[p] = n;
  zeroFrom(u8, dv, p + 1 + n, p + size);
  return p + size;
}

/**
 * Type tests for the generated code, which calls these rather than using `typeof` itself. With
 * a `typeof` per property in its source, V8 (11.3) kept a codec made by `new Function` alive
 * after a full collection (about 17 KB for 64 `'i'` properties; only a memory-reducing
 * collection freed it), so the classes built for a peer's announcements did not seem to go
 * with the peer (test/hostile-schema.test.ts). The calls are inlined once the code is hot.
 */
function isNum(v: unknown): v is number {
  return typeof v === 'number';
}

function isStr(v: unknown): v is string {
  return typeof v === 'string';
}

function isBig(v: unknown): v is bigint {
  return typeof v === 'bigint';
}

/** Whether a string has no lone surrogate, which UTF-8 cannot encode (TextEncoder would write U+FFFD for it). */
function isWellFormed(v: string): boolean {
  return (v as unknown as { isWellFormed(): boolean }).isWellFormed();
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
      // One rule for every string code: text is UTF-8, so a character of 'c' is one whose UTF-8 is one byte.
      return `if (isStr(${x}) && ${x}.length === 1 && ${x}.charCodeAt(0) < 128) { ${room} u8[p++] = ${x}.charCodeAt(0); }
        else if (${x} instanceof Uint8Array && ${x}.length === 1) { ${room} u8[p++] = ${x}[0]; } else ${bad};`;
    case 'big': {
      const as = t.code === 'q' ? 'asIntN' : 'asUintN';
      const set = t.code === 'q' ? 'setBigInt64' : 'setBigUint64';
      return `if (Number.isSafeInteger(${x})) ${x} = BigInt(${x}); if (!isBig(${x}) || BigInt.${as}(64, ${x}) !== ${x}) ${bad}; ${room} dv.${set}(p, ${x}); p += 8;`;
    }
    case 'num': {
      // The number test comes first: a bigint would make the bit operations throw a TypeError.
      const checks: Record<string, string> = {
        b: `(${x} << 24 >> 24) !== ${x}`,
        B: `(${x} & 255) !== ${x}`,
        h: `(${x} << 16 >> 16) !== ${x}`,
        H: `(${x} & 65535) !== ${x}`,
        i: `(${x} | 0) !== ${x}`,
        l: `(${x} | 0) !== ${x}`,
        I: `(${x} >>> 0) !== ${x}`,
        L: `(${x} >>> 0) !== ${x}`,
        f: `(${x} > 3.4028234663852886e38 && ${x} !== Infinity) || (${x} < -3.4028234663852886e38 && ${x} !== -Infinity)`,
        d: 'false',
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
      return `if (!isNum(${x}) || ${checks[t.code]}) ${bad}; ${room} ${writes[t.code]} p += ${t.size};`;
    }
  }
}

/**
 * Code that reads scalar t at `p` into `x`, advancing `p` (bounds already checked by the caller).
 * `raw`: a `c` is read as a 1-byte Uint8Array; else as text, and `notText` (an expression
 * taking the byte) throws for a byte that is not a character in UTF-8.
 */
function decScalar(t: ScalarType, x: string, raw: boolean, notText: (b: string) => string): string {
  switch (t.kind) {
    case 'bool':
      return `${x} = u8[p++] !== 0;`;
    case 'char':
      if (raw) return `${x} = u8.slice(p, p + 1); p++;`;
      return `{ const b = u8[p++]; if (b > 127) ${notText('b')}; ${x} = String.fromCharCode(b); }`;
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
  return `if (isStr(${x}) && ${x}.length <= ${size}) {
    if (p + ${size} > end) return -1;
    ${zero.join(' ')}
    const ${len} = ${x}.length; let ${j} = 0;
    for (; ${j} < ${len}; ${j}++) { const c = ${x}.charCodeAt(${j}); if (c > 127) break; u8[p + ${j}] = c; }
    if (${j} === ${len}) ${r} = p + ${size};
  }`;
}

/** The type code of a string type, for messages. */
function stringCode(t: FieldType): string {
  return t.kind === 'fixstr'
    ? `${t.size}s`
    : t.kind === 'fixpstr'
      ? `${t.size}p`
      : t.kind === 'pstr'
        ? 'p'
        : 'S';
}

/** Code that writes a string type (`Ns`, `Np`, `p`, `S`) through its helper and turns its result into an error or `p`. */
function encString(t: FieldType, x: string, fail: (why: string) => string): string {
  const call =
    t.kind === 'fixstr'
      ? `writeFixed(u8, dv, p, end, ${x}, ${t.size})`
      : t.kind === 'fixpstr'
        ? `writePascal(u8, dv, p, end, ${x}, ${t.size})`
        : `writeVar(u8, dv, p, end, ${x}, ${t.kind === 'pstr' ? 1 : 4}, ${t.kind === 'pstr' ? 255 : MAX_VARIABLE_BYTES})`;
  const limit =
    t.kind === 'fixstr'
      ? `${t.size} bytes`
      : t.kind === 'fixpstr'
        ? `${t.size - 1} bytes`
        : t.kind === 'pstr'
          ? '255 bytes'
          : `${MAX_VARIABLE_BYTES} bytes`;
  const code = stringCode(t);
  // A short fixed field holding short ASCII (padding, tags) is written inline: the field
  // zeroed with unrolled stores, then the characters; anything else goes through the helper.
  const r = `r${tmpCounter++}`;
  const inline = t.kind === 'fixstr' && t.size <= INLINE_FIXED_MAX ? fixedAsciiInline(t.size, x, r) : '';
  const checks = `if (${r} === -1) return -1; if (${r} === -2) ${fail(`'is longer than the ${limit} type \\'${code}\\' holds'`)}; if (${r} === -3) ${fail(`'must be a string or Uint8Array for type \\'${code}\\''`)}; if (${r} === -5) ${fail(`'holds a lone surrogate, which UTF-8 cannot encode (it would arrive as U+FFFD)'`)}; p = ${r};`;
  if (inline !== '') return `{ let ${r} = -4; ${inline} if (${r} === -4) ${r} = ${call}; ${checks} }`;
  return `{ const ${r} = ${call}; ${checks} }`;
}

function encField(t: FieldType, x: string, fail: (why: string) => string): string {
  switch (t.kind) {
    case 'num':
    case 'big':
    case 'bool':
    case 'char':
      return encScalar(t, x, fail);
    case 'fixstr':
    case 'fixpstr':
    case 'pstr':
    case 'lstr':
      return encString(t, x, fail);
    case 'arr': {
      const n = `n${tmpCounter++}`;
      const e = `e${tmpCounter++}`;
      const j = `j${tmpCounter++}`;
      const elemFail = (why: string) => fail(`'element ' + ${j} + ': ' + ${why}`);
      const code = t.elem.kind === 'fixstr' ? 's' : scalarCode(t.elem);
      const one = t.elem.kind === 'fixstr' ? encString(t.elem, e, elemFail) : encScalar(t.elem, e, elemFail);
      return `{ if (!Array.isArray(${x}) && !(ArrayBuffer.isView(${x}) && !(${x} instanceof DataView))) ${fail(`'must be an array for type \\'a${code}\\''`)};
        const ${n} = ${x}.length; if (${n} * ${t.elem.size} > ${MAX_VARIABLE_BYTES}) ${fail(`'has ' + ${n} + ' elements, more than the ${MAX_VARIABLE_BYTES}-byte limit'`)};
        if (p + 4 + ${n} * ${t.elem.size} > end) return -1; dv.setInt32(p, ${n}); p += 4;
        for (let ${j} = 0; ${j} < ${n}; ${j}++) { let ${e} = ${x}[${j}]; ${one} } }`;
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

/**
 * Code that reads field `i` of type `t` into `x`. `raw`: its strings are bytes (`Uint8Array`
 * copies, NULs of `Ns` kept); else UTF-8 text (`Ns` with its trailing NULs trimmed), and the
 * field's index is noted in `f` first, so that an invalid UTF-8 error names it.
 */
function decField(t: FieldType, x: string, trunc: string, i: number, raw: boolean): string {
  const text = raw ? '' : `f = ${i}; `;
  const notText = (b: string) => `notText(${i}, ${b})`;
  switch (t.kind) {
    case 'num':
    case 'big':
    case 'bool':
    case 'char':
      return `if (p + ${t.size} > end) ${trunc}; ${decScalar(t, x, raw, notText)}`;
    case 'fixstr':
      return raw
        ? `if (p + ${t.size} > end) ${trunc}; ${x} = u8.slice(p, p + ${t.size}); p += ${t.size};`
        : `if (p + ${t.size} > end) ${trunc}; ${text}${x} = readFixed(u8, dv, p, ${t.size}); p += ${t.size};`;
    case 'fixpstr': {
      const read = raw ? `u8.slice(p + 1, p + 1 + n)` : `readUtf8(u8, p + 1, n)`;
      return `{ if (p + ${t.size} > end) ${trunc}; const n = u8[p]; if (n > ${t.size - 1}) badLength(${i}, n, ${t.size}); ${text}${x} = ${read}; p += ${t.size}; }`;
    }
    case 'pstr':
    case 'lstr': {
      const len = t.kind === 'pstr' ? 'const n = u8[p++];' : 'const n = dv.getInt32(p); p += 4;';
      const hdr = t.kind === 'pstr' ? 1 : 4;
      const read = raw ? 'u8.slice(p, p + n)' : 'readUtf8(u8, p, n)';
      return `{ if (p + ${hdr} > end) ${trunc}; ${len} if (n < 0 || p + n > end) ${trunc}; ${text}${x} = ${read}; p += n; }`;
    }
    case 'arr': {
      const n = `n${tmpCounter++}`;
      const j = `j${tmpCounter++}`;
      const e = `e${tmpCounter++}`;
      const one =
        t.elem.kind === 'fixstr'
          ? raw
            ? `${e} = u8.slice(p, p + 1); p++;`
            : `${e} = readFixed(u8, dv, p, 1); p++;`
          : decScalar(t.elem, e, raw, notText);
      return `{ if (p + 4 > end) ${trunc}; const ${n} = dv.getInt32(p); p += 4; if (${n} < 0 || p + ${n} * ${t.elem.size} > end) ${trunc};
        ${text}const a = new Array(${n}); for (let ${j} = 0; ${j} < ${n}; ${j}++) { let ${e}; ${one} a[${j}] = ${e}; } ${x} = a; }`;
    }
    case 'tuple': {
      const parts = t.elems.map((et, k) => {
        const y = `t${tmpCounter++}`;
        return `{ let ${y}; ${decField(et, y, trunc, i, raw)} ${x}[${k}] = ${y}; }`;
      });
      return `${x} = new Array(${t.elems.length});\n${parts.join('\n')}`;
    }
  }
}

/**
 * Compiles the codec of a message class. `proto` is consulted once for
 * `packX`/`unpackX` hooks; their presence is baked into the generated code.
 * `bytes` names the string properties that decode as `Uint8Array` (see
 * `Message.bytes`); the others decode as UTF-8 text.
 */
export function compileCodec(
  className: string,
  properties: readonly string[],
  types: unknown,
  proto: object,
  bytes?: readonly string[],
): Codec {
  const fields = parseTypes(className, properties, types);
  const raw = parseBytes(className, properties, fields, bytes);
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
      `{ let v; ${decField(t, 'v', `trunc(${i})`, i, raw[i]!)} m[${prop}] = ${hasUnpack ? `m[${JSON.stringify(unpack)}](v)` : 'v'}; }`,
    );
  });
  const field = (i: number) => `${className}.${properties[i]}`;
  const bad = (i: number, v: unknown, why: string): never => {
    throw new PacketError(`${field(i)}: ${describe(v)} ${why}`);
  };
  const trunc = (i: number): never => {
    throw new PacketError(`${field(i)}: bytes end before the property does (truncated packet)`);
  };
  const asBytes = (i: number) =>
    `declare '${properties[i]}' in ${className}.bytes to receive it as a Uint8Array`;
  const notText = (i: number, b: number): never => {
    throw new PacketError(
      `${field(i)}: byte 0x${b.toString(16)} is not a character (a 'c' string is one ASCII character; ${asBytes(i)})`,
    );
  };
  const badLength = (i: number, n: number, size: number): never => {
    throw new PacketError(
      `${field(i)}: length byte ${n} is more than the ${size - 1} bytes type '${size}p' holds`,
    );
  };
  /** A decoding error that is not ours: the strict UTF-8 decoder's becomes a PacketError naming the field (`f`). */
  const decodeFailed = (err: unknown, f: number): never => {
    if (err instanceof PacketError) throw err;
    if (err instanceof TypeError && /decode|encoded/i.test(err.message)) {
      throw new PacketError(`${field(f)}: bytes that are not valid UTF-8 (${asBytes(f)})`, { cause: err });
    }
    throw err;
  };
  const helpers = {
    isNum,
    isStr,
    isBig,
    bad,
    trunc,
    notText,
    badLength,
    writeVar,
    writeFixed,
    writePascal,
    readUtf8,
    readFixed,
    decodeFailed,
  };
  const names = Object.keys(helpers);
  const values = Object.values(helpers);
  const encode = new Function(
    ...names,
    `return function encode_${safeIdent(className)}(m, u8, dv, p, end) {\n${enc.join('\n')}\nreturn p;\n};`,
  )(...values) as EncodeFn;
  // One function, its try/catch included: no wrapper call per message.
  const decode = new Function(
    ...names,
    `return function decode_${safeIdent(className)}(m, u8, dv, p, end) {\nlet f = -1;\ntry {\n${dec.join('\n')}\n} catch (err) { decodeFailed(err, f); }\nreturn p;\n};`,
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

/**
 * Type codes of message properties, parsed once per class. The codes are
 * pysage's: Python `struct` single-value codes in network byte order, plus
 * `Ns`, `p`, `S`, `aX` and tuples of codes.
 */
import { WrongMessageTypeSpecified } from './errors.js';

/** A property's type code as written in `static types`. */
export type TypeCode = string | readonly string[];

/** A parsed single-value numeric code. */
export interface NumType {
  kind: 'num';
  code: 'b' | 'B' | 'h' | 'H' | 'i' | 'I' | 'l' | 'L' | 'f' | 'd';
  size: number;
}
/** `q`/`Q`: 64-bit integers, as bigint. */
export interface BigType {
  kind: 'big';
  code: 'q' | 'Q';
  size: 8;
}
/** `?`: one byte, 0 or 1. */
export interface BoolType {
  kind: 'bool';
  size: 1;
}
/** `c`: one byte, as a one-character string (Latin-1). */
export interface CharType {
  kind: 'char';
  size: 1;
}
/** `Ns`: exactly N bytes, NUL-padded. */
export interface FixStrType {
  kind: 'fixstr';
  size: number;
}
/** `p`: u8 length then up to 255 bytes. `S`: i32 length then bytes. */
export interface VarStrType {
  kind: 'pstr' | 'lstr';
}
/** `aX`: i32 count then that many X (a single-value code). */
export interface ArrType {
  kind: 'arr';
  elem: ScalarType;
}
/** A tuple of codes: the property's value is an array, one element per code. */
export interface TupleType {
  kind: 'tuple';
  elems: FieldType[];
}
export type ScalarType = NumType | BigType | BoolType | CharType;
export type FieldType = ScalarType | FixStrType | VarStrType | ArrType | TupleType;

const NUM_SIZES: Record<string, number> = { b: 1, B: 1, h: 2, H: 2, i: 4, I: 4, l: 4, L: 4, f: 4, d: 8 };

function parseScalar(code: string): ScalarType | undefined {
  const size = NUM_SIZES[code];
  if (size !== undefined) return { kind: 'num', code: code as NumType['code'], size };
  if (code === 'q' || code === 'Q') return { kind: 'big', code, size: 8 };
  if (code === '?') return { kind: 'bool', size: 1 };
  if (code === 'c') return { kind: 'char', size: 1 };
  return undefined;
}

function parseOne(code: unknown, where: string, inTuple: boolean): FieldType {
  if (Array.isArray(code)) {
    if (inTuple) throw new WrongMessageTypeSpecified(`${where}: tuples cannot nest`);
    if (code.length === 0) throw new WrongMessageTypeSpecified(`${where}: an empty tuple of types`);
    return { kind: 'tuple', elems: code.map((c, i) => parseOne(c, `${where}[${i}]`, true)) };
  }
  if (typeof code !== 'string') {
    throw new WrongMessageTypeSpecified(`${where}: a type code must be a string or an array of strings`);
  }
  const scalar = parseScalar(code);
  if (scalar) return scalar;
  if (code === 'p') return { kind: 'pstr' };
  if (code === 'S') return { kind: 'lstr' };
  const fixed = /^(\d+)s$/.exec(code);
  if (fixed) {
    const size = Number(fixed[1]);
    if (size > 65535) throw new WrongMessageTypeSpecified(`${where}: '${code}' is wider than 65535 bytes`);
    return { kind: 'fixstr', size };
  }
  if (code.length === 2 && code[0] === 'a') {
    const elem = parseScalar(code[1]!);
    if (elem) return { kind: 'arr', elem };
  }
  throw new WrongMessageTypeSpecified(
    `${where}: unknown type code '${code}' (use c b B ? h H i I l L q Q f d, Ns, p, S, aX or a tuple of codes)`,
  );
}

/** Parses a class's `types`, checking it against `properties`. */
export function parseTypes(className: string, properties: readonly string[], types: unknown): FieldType[] {
  if (!Array.isArray(types)) {
    throw new WrongMessageTypeSpecified(`${className}.types must be an array of type codes`);
  }
  if (types.length !== properties.length) {
    throw new WrongMessageTypeSpecified(
      `${className} has ${properties.length} properties but ${types.length} types: 'properties' and 'types' must pair up`,
    );
  }
  return types.map((t, i) => parseOne(t, `${className}.${properties[i]}`, false));
}

/** Encoded size of a type when it does not depend on the value, else -1. */
export function fixedSize(t: FieldType): number {
  switch (t.kind) {
    case 'num':
    case 'big':
    case 'bool':
    case 'char':
    case 'fixstr':
      return t.size;
    case 'tuple': {
      let n = 0;
      for (const e of t.elems) {
        const s = fixedSize(e);
        if (s < 0) return -1;
        n += s;
      }
      return n;
    }
    default:
      return -1;
  }
}

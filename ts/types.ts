/**
 * Type codes of message properties, parsed once per class. The codes are
 * pysage's: Python `struct` single-value codes in network byte order (`s` and
 * `Ns`, `Np` among them), plus pysage's own `p`, `S`, `aX` and tuples of codes.
 * A code pysage would pack differently from what it means (or not at all) is
 * refused here, saying why.
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
/** `c`: one byte: a one-character ASCII string (UTF-8 of one byte), or one byte of a byte string. */
export interface CharType {
  kind: 'char';
  size: 1;
}
/** `Ns` (`s` is `1s`): exactly N bytes, NUL-padded. */
export interface FixStrType {
  kind: 'fixstr';
  size: number;
}
/** `Np` (Python struct's Pascal string): exactly N bytes: a length byte, up to N-1 bytes, NUL padding. */
export interface FixPStrType {
  kind: 'fixpstr';
  size: number;
}
/** `p`: u8 length then up to 255 bytes. `S`: i32 length then bytes. */
export interface VarStrType {
  kind: 'pstr' | 'lstr';
}
/** `aX`: i32 count then that many X (a single-value code, or `s`: one byte each). */
export interface ArrType {
  kind: 'arr';
  elem: ScalarType | FixStrType;
}
/** A tuple of codes: the property's value is an array, one element per code. */
export interface TupleType {
  kind: 'tuple';
  elems: FieldType[];
}
export type ScalarType = NumType | BigType | BoolType | CharType;
export type FieldType = ScalarType | FixStrType | FixPStrType | VarStrType | ArrType | TupleType;

/** Whether values of this type are strings (text or, for a property in `static bytes`, bytes). */
export function holdsString(t: FieldType): boolean {
  switch (t.kind) {
    case 'char':
    case 'fixstr':
    case 'fixpstr':
    case 'pstr':
    case 'lstr':
      return true;
    case 'arr':
      return t.elem.kind === 'char' || t.elem.kind === 'fixstr';
    case 'tuple':
      return t.elems.some(holdsString);
    default:
      return false;
  }
}

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
  if (code === 's') return { kind: 'fixstr', size: 1 };
  const fixed = /^(\d+)([sp])$/.exec(code);
  if (fixed) {
    const size = Number(fixed[1]);
    if (fixed[2] === 's') {
      if (size > 65535) throw new WrongMessageTypeSpecified(`${where}: '${code}' is wider than 65535 bytes`);
      return { kind: 'fixstr', size };
    }
    if (size < 2) {
      throw new WrongMessageTypeSpecified(
        `${where}: '${code}' holds no characters (Python's struct keeps one of the N bytes of 'Np' for the length, so it packs every value as ${size === 0 ? 'nothing' : 'one zero byte'}); use 2p or wider, or 'p' for pysage's variable-length string`,
      );
    }
    if (size > 256) {
      throw new WrongMessageTypeSpecified(
        `${where}: '${code}' is wider than 256 bytes (Python's struct writes at most 255 in its length byte and unpacks at most 255 bytes, so a longer value would come back cut); use 'S'`,
      );
    }
    return { kind: 'fixpstr', size };
  }
  if (code[0] === 'a') {
    const e = code.slice(1);
    const elem = parseScalar(e);
    if (elem && code.length === 2) return { kind: 'arr', elem };
    if (e === 's') return { kind: 'arr', elem: { kind: 'fixstr', size: 1 } };
    if (e === 'p') {
      throw new WrongMessageTypeSpecified(
        `${where}: 'ap' cannot carry strings: pysage packs each element with struct's 'p' of count 1, which holds no characters (every element packs as one zero byte and unpacks as ''); use a tuple of 'p' codes, or 'S'`,
      );
    }
    throw new WrongMessageTypeSpecified(
      `${where}: '${code}' is not an array code: pysage packs each element with struct.pack('!' + the one character after 'a') and ignores the rest, so an array code is 'a' and one of c b B ? h H i I l L q Q f d s`,
    );
  }
  throw new WrongMessageTypeSpecified(
    `${where}: unknown type code '${code}' (use c b B ? h H i I l L q Q f d, s, Ns, Np, p, S, aX or a tuple of codes)`,
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
    case 'fixpstr':
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

/**
 * Checks a class's `bytes` declaration (the string properties that decode as a
 * `Uint8Array`, bytes kept exactly) against its properties and parsed types;
 * returns whether each property is one.
 */
export function parseBytes(
  className: string,
  properties: readonly string[],
  fields: readonly FieldType[],
  bytes: unknown,
): boolean[] {
  const raw = properties.map(() => false);
  if (bytes === undefined) return raw;
  if (!Array.isArray(bytes)) {
    throw new WrongMessageTypeSpecified(`${className}.bytes must be an array of property names`);
  }
  for (const b of bytes) {
    const i = typeof b === 'string' ? properties.indexOf(b) : -1;
    if (i < 0) {
      throw new WrongMessageTypeSpecified(
        `${className}.bytes lists ${JSON.stringify(b)}, which is not one of its properties (${properties.join(', ') || 'none'})`,
      );
    }
    if (!holdsString(fields[i]!)) {
      throw new WrongMessageTypeSpecified(
        `${className}.bytes lists '${b}', whose type holds no string (bytes apply to c, s, Ns, Np, p, S, as and tuples of them)`,
      );
    }
    raw[i] = true;
  }
  return raw;
}

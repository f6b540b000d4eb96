/**
 * Random type codes and values for property-based codec tests, and what each
 * value decodes back to (`f` through Math.fround, everything else as is).
 */
import type { TypeCode } from '../../ts/index.js';
import type { Rng } from './rng.js';

export const SCALAR_CODES = ['c', 'b', 'B', '?', 'h', 'H', 'i', 'I', 'l', 'L', 'q', 'Q', 'f', 'd'] as const;

const INT_RANGE: Record<string, readonly [number, number]> = {
  b: [-128, 127],
  B: [0, 255],
  h: [-32768, 32767],
  H: [0, 65535],
  i: [-(2 ** 31), 2 ** 31 - 1],
  l: [-(2 ** 31), 2 ** 31 - 1],
  I: [0, 2 ** 32 - 1],
  L: [0, 2 ** 32 - 1],
};

const BIG_EDGES: Record<string, readonly bigint[]> = {
  q: [-(2n ** 63n), 2n ** 63n - 1n, 0n, -1n, 1n],
  Q: [0n, 1n, 2n ** 64n - 1n, 2n ** 63n],
};

/** Characters of 1, 2, 3 and 4 UTF-8 bytes (the last a surrogate pair in UTF-16); no NUL. */
const CHARS = ['a', 'Z', '7', ' ', '~', '\u0001', 'é', 'ß', '€', '中', '😀', '𝄞'];

export function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** A string of at most `maxBytes` UTF-8 bytes; sometimes empty, sometimes exactly `maxBytes`. */
export function randomString(rng: Rng, maxBytes: number): string {
  if (maxBytes === 0 || rng.chance(0.1)) return '';
  const target = rng.chance(0.2) ? maxBytes : rng.int(1, maxBytes);
  let s = '';
  let n = 0;
  for (let guard = 0; guard < target && n < target; guard++) {
    const c = rng.pick(CHARS);
    const len = utf8Length(c);
    if (n + len > target) break;
    s += c;
    n += len;
  }
  return s + 'x'.repeat(target - n);
}

function randomBits32(rng: Rng): number {
  return rng.int(0, 0xffff) * 0x10000 + rng.int(0, 0xffff);
}

export function randomScalar(rng: Rng, code: string): unknown {
  switch (code) {
    case 'c':
      // One ASCII character: a 'c' string is UTF-8 of one byte, as every string code's text is.
      return String.fromCharCode(rng.int(0, 127));
    case '?':
      return rng.chance(0.5);
    case 'q':
    case 'Q': {
      if (rng.chance(0.3)) return rng.pick(BIG_EDGES[code]!);
      const raw = (BigInt(randomBits32(rng)) << 32n) | BigInt(randomBits32(rng));
      return code === 'q' ? BigInt.asIntN(64, raw) : raw;
    }
    case 'f': {
      const r = rng.next();
      if (r < 0.1) return rng.pick([0, -0, Infinity, -Infinity, Number.NaN, 3.4028234663852886e38, 1.4e-45]);
      if (r < 0.5) return new Float32Array(new Uint32Array([randomBits32(rng)]).buffer)[0]!;
      return (rng.next() - 0.5) * 10 ** rng.int(-10, 30);
    }
    case 'd': {
      const r = rng.next();
      if (r < 0.1)
        return rng.pick([0, -0, Infinity, -Infinity, Number.NaN, Number.MAX_VALUE, Number.MIN_VALUE]);
      if (r < 0.5)
        return new Float64Array(new Uint32Array([randomBits32(rng), randomBits32(rng)]).buffer)[0]!;
      return (rng.next() - 0.5) * 10 ** rng.int(-300, 300);
    }
    default: {
      const [lo, hi] = INT_RANGE[code]!;
      if (rng.chance(0.3)) return rng.pick([lo, hi, 0, 1, lo < 0 ? -1 : hi]);
      return lo + Math.floor(rng.next() * (hi - lo + 1));
    }
  }
}

/** A random type code: a scalar, `s`, `Ns`, `Np`, `p`, `S`, `aX`, or (unless inside one) a tuple. */
export function randomCode(rng: Rng, inTuple = false): TypeCode {
  const r = rng.next();
  if (r < 0.4) return rng.pick(SCALAR_CODES);
  if (r < 0.45) return rng.chance(0.2) ? 's' : `${rng.int(0, 40)}s`;
  if (r < 0.5) return `${rng.int(2, 40)}p`;
  if (r < 0.6) return 'p';
  if (r < 0.7) return 'S';
  if (r < 0.85 || inTuple) return rng.chance(0.1) ? 'as' : `a${rng.pick(SCALAR_CODES)}`;
  return Array.from({ length: rng.int(1, 4) }, () => randomCode(rng, true) as string);
}

/** A random value for `code`. */
export function randomValue(rng: Rng, code: TypeCode): unknown {
  if (typeof code !== 'string') return code.map((c) => randomValue(rng, c));
  if (code === 'p') return randomString(rng, 255);
  if (code === 'S') return randomString(rng, rng.chance(0.1) ? 5000 : 300);
  if (code === 's') return randomString(rng, 1);
  const fixed = /^(\d+)([sp])$/.exec(code);
  if (fixed) return randomString(rng, Number(fixed[1]) - (fixed[2] === 'p' ? 1 : 0));
  if (code.length === 2 && code[0] === 'a') {
    const n = rng.chance(0.15) ? 0 : rng.int(1, 20);
    return Array.from({ length: n }, () =>
      code[1] === 's' ? randomString(rng, 1) : randomScalar(rng, code[1]!),
    );
  }
  return randomScalar(rng, code);
}

/** What `value` of type `code` decodes back to. */
export function decoded(code: TypeCode, value: unknown): unknown {
  if (typeof code !== 'string') return (value as unknown[]).map((v, i) => decoded(code[i]!, v));
  if (code === 'f') return Math.fround(value as number);
  if (code === 'af') return (value as number[]).map((v) => Math.fround(v));
  return value;
}

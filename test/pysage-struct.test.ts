/**
 * tsage's packing against Python's own `struct`, driven by pysage's rules
 * (fixtures/pysage/pack.py, run with python3): seeded random schemas over
 * every type code tsage takes, string properties as text or (declared in
 * `bytes`) as arbitrary bytes, must pack to the same bytes in both, and what
 * Python packed must decode in tsage to the values given.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { compileCodec, type TypeCode } from '../ts/index.js';
import { toHex } from './helpers/bytes.js';
import { type Rng, seededRng } from './helpers/rng.js';
import { decoded, randomCode, randomValue } from './helpers/values.js';

const PACK = fileURLToPath(new URL('./fixtures/pysage/pack.py', import.meta.url));

/** The byte width a string code holds (`p`: 255, `S`: some), or -1 for a code that holds no string. */
function stringRoom(code: string): number {
  if (code === 'c' || code === 's' || code === 'as') return 1;
  if (code === 'p') return 255;
  if (code === 'S') return 300;
  const m = /^(\d+)([sp])$/.exec(code);
  return m ? Number(m[1]) - (m[2] === 'p' ? 1 : 0) : -1;
}

/** Arbitrary bytes (any value, NULs included) for a bytes property of `code`. */
function randomBytes(rng: Rng, code: string): Uint8Array | Uint8Array[] {
  const one = (max: number, exact = false) =>
    Uint8Array.from({ length: exact ? max : rng.int(0, max) }, () => rng.int(0, 255));
  if (code === 'as') return Array.from({ length: rng.int(0, 6) }, () => one(1, true));
  return one(stringRoom(code), code === 'c');
}

/** What a bytes property of `code` decodes to: Ns pads with NULs to its width, the others are exact. */
function decodedBytes(code: string, v: Uint8Array | Uint8Array[]): unknown {
  if (Array.isArray(v)) return v.map((b) => toHex(b));
  const m = /^(\d+)s$/.exec(code === 's' ? '1s' : code);
  if (!m) return toHex(v);
  const out = new Uint8Array(Number(m[1]));
  out.set(v);
  return toHex(out);
}

/** A value as pack.py reads it. */
function toJson(v: unknown): unknown {
  if (v instanceof Uint8Array) return { hex: Buffer.from(v).toString('hex') };
  if (typeof v === 'bigint') return { int: String(v) };
  if (typeof v === 'number' && !Number.isFinite(v)) return { float: String(v) };
  if (Object.is(v, -0)) return { float: '-0.0' };
  if (Array.isArray(v)) return v.map(toJson);
  return v;
}

/** NaN aside (its payload bits are a float's business, not the wire's), any value. */
function noNaN(v: unknown): unknown {
  if (typeof v === 'number' && Number.isNaN(v)) return 1.5;
  return Array.isArray(v) ? v.map(noNaN) : v;
}

/** Hex of bytes values, values as they are otherwise: comparable with deepEqual. */
function comparable(v: unknown): unknown {
  if (v instanceof Uint8Array) return toHex(v);
  return Array.isArray(v) ? v.map(comparable) : v;
}

interface Case {
  types: TypeCode[];
  bytes: string[];
  values: unknown[];
  want: unknown[];
}

test("random schemas pack as Python's struct packs them by pysage's rules, and decode back", (t) => {
  const python = spawnSync('python3', ['--version']);
  t.is(python.status, 0, 'python3 is needed on the PATH for this test (apt-get install python3)');
  if (python.status !== 0) return;
  const rng = seededRng(t);
  const cases: Case[] = [];
  for (let k = 0; k < 600; k++) {
    const types = Array.from({ length: rng.int(1, 5) }, () => randomCode(rng));
    const bytes: string[] = [];
    const values: unknown[] = [];
    const want: unknown[] = [];
    types.forEach((code, i) => {
      if (typeof code === 'string' && stringRoom(code) >= 0 && rng.chance(0.4)) {
        bytes.push(`p${i}`);
        const v = randomBytes(rng, code);
        values.push(v);
        want.push(decodedBytes(code, v));
        return;
      }
      const v = noNaN(randomValue(rng, code));
      values.push(v);
      want.push(comparable(decoded(code, v)));
    });
    cases.push({ types, bytes, values, want });
  }
  const input = cases
    .map((c) => JSON.stringify({ packetType: 200, types: c.types, values: c.values.map(toJson) }))
    .join('\n');
  const r = spawnSync('python3', [PACK], { input: `${input}\n`, encoding: 'utf8', timeout: 60_000 });
  t.is(r.status, 0, r.stderr);
  const packed = r.stdout.trim().split('\n');
  t.is(packed.length, cases.length);
  let failures = 0;
  cases.forEach((c, k) => {
    const props = c.types.map((_, i) => `p${i}`);
    const codec = compileCodec(`Case${k}`, props, c.types, {}, c.bytes);
    const buf = new Uint8Array(1 << 16);
    const dv = new DataView(buf.buffer);
    buf[0] = 200;
    const end = codec.encode(
      Object.fromEntries(props.map((p, i) => [p, c.values[i]])),
      buf,
      dv,
      1,
      buf.length,
    );
    const py = Buffer.from(packed[k]!, 'hex');
    const label = `${JSON.stringify(c.types)} bytes ${JSON.stringify(c.bytes)}`;
    if (toHex(buf.subarray(0, end)) !== toHex(py)) {
      if (failures++ < 5) t.fail(`${label}: tsage ${toHex(buf.subarray(0, end))}, Python ${toHex(py)}`);
      return;
    }
    const m: Record<string, unknown> = {};
    const pdv = new DataView(py.buffer, py.byteOffset, py.byteLength);
    t.is(codec.decode(m, py, pdv, 1, py.length), py.length, label);
    const back = props.map((p) => comparable(m[p]));
    if (JSON.stringify(back, bigints) !== JSON.stringify(c.want, bigints)) {
      if (failures++ < 5) t.fail(`${label}: decoded ${JSON.stringify(back, bigints)}`);
    }
  });
  t.is(failures, 0);
});

function bigints(_k: string, v: unknown): unknown {
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  if (Object.is(v, -0)) return '-0';
  return v;
}

/** Byte helpers for known-answer tests. */
import { compileCodec, type TypeCode } from '../../ts/index.js';

/** `hex('67 00 00 00 01')` -> those bytes. */
export function hex(s: string): Uint8Array {
  const parts = s.split(/\s+/).filter((x) => x !== '');
  return Uint8Array.from(parts, (p) => Number.parseInt(p, 16));
}

/** Bytes as `67 00 00 00 01`, for readable failure messages. */
export function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
}

/** A codec for properties `p0..pN` of the given types, in an object named `className`. */
export function codecOf(types: readonly TypeCode[], className = 'T', proto: object = {}) {
  const props = types.map((_, i) => `p${i}`);
  return { props, codec: compileCodec(className, props, types, proto) };
}

/** Packs `values` (no packetType byte) with the codec of `types`. */
export function packValues(types: readonly TypeCode[], values: readonly unknown[]): Uint8Array {
  const { props, codec } = codecOf(types);
  const m = Object.fromEntries(props.map((p, i) => [p, values[i]]));
  const buf = new Uint8Array(1 << 20);
  const end = codec.encode(m, buf, new DataView(buf.buffer), 0, buf.length);
  if (end < 0) throw new Error(`encode returned ${end}`);
  return buf.slice(0, end);
}

/** Unpacks bytes made by {@link packValues}; throws unless every byte is used. */
export function unpackValues(types: readonly TypeCode[], bytes: Uint8Array): unknown[] {
  const { props, codec } = codecOf(types);
  const m: Record<string, unknown> = {};
  const end = codec.decode(
    m,
    bytes,
    new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    0,
    bytes.length,
  );
  if (end !== bytes.length) throw new Error(`decode used ${end} of ${bytes.length} bytes`);
  return props.map((p) => m[p]);
}

/**
 * An independent reader of netcode 1.02 connect tokens for tests, built on
 * node:crypto (Node's OpenSSL) rather than on tsage's native code, so that
 * a token tsage writes is checked by a second implementation.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';

const SIGMA = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574];

/**
 * HChaCha20 from OpenSSL's ChaCha20 keystream: the 'chacha20' cipher's 16-byte
 * IV is the state's last row, and a keystream block is the rounds' output plus
 * the input state, so subtracting the known rows (constants, IV) gives back
 * the rounds' output, whose first and last rows are HChaCha20.
 */
export function hchacha20(key: Uint8Array, nonce16: Uint8Array): Uint8Array {
  const block = createCipheriv('chacha20', key, nonce16).update(Buffer.alloc(64));
  const b = new DataView(block.buffer, block.byteOffset, 64);
  const n = new DataView(nonce16.buffer, nonce16.byteOffset, 16);
  const out = new Uint8Array(32);
  const o = new DataView(out.buffer);
  for (let i = 0; i < 4; i++) {
    o.setUint32(4 * i, (b.getUint32(4 * i, true) - SIGMA[i]!) >>> 0, true);
    o.setUint32(16 + 4 * i, (b.getUint32(48 + 4 * i, true) - n.getUint32(4 * i, true)) >>> 0, true);
  }
  return out;
}

/** XChaCha20-Poly1305 decryption (throws if it does not authenticate). */
export function xchachaOpen(
  key: Uint8Array,
  nonce24: Uint8Array,
  aad: Uint8Array,
  sealed: Uint8Array,
): Buffer {
  const iv = Buffer.concat([Buffer.alloc(4), nonce24.subarray(16)]);
  const body = sealed.subarray(0, sealed.length - 16);
  const d = createDecipheriv('chacha20-poly1305', hchacha20(key, nonce24.subarray(0, 16)), iv, {
    authTagLength: 16,
  });
  d.setAAD(aad, { plaintextLength: body.length });
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  return Buffer.concat([d.update(body), d.final()]);
}

/** An address as `ip:port`, IPv6 in brackets and normalised. */
function readAddress(v: DataView, at: number): [string, number] {
  const type = v.getUint8(at);
  if (type === 1) {
    const ip = [1, 2, 3, 4].map((i) => v.getUint8(at + i)).join('.');
    return [`${ip}:${v.getUint16(at + 5, true)}`, at + 7];
  }
  if (type !== 2) throw new Error(`address type ${type}`);
  const groups = Array.from({ length: 8 }, (_, i) => v.getUint16(at + 1 + 2 * i, true).toString(16));
  return [
    `${normaliseAddress(`[${groups.join(':')}]:0`).slice(0, -2)}:${v.getUint16(at + 17, true)}`,
    at + 19,
  ];
}

/** `ip:port` / `[ipv6]:port` in one canonical spelling. */
export function normaliseAddress(a: string): string {
  const i = a.lastIndexOf(':');
  return `${new URL(`http://${a.slice(0, i)}`).hostname}:${a.slice(i + 1)}`;
}

function readAddresses(v: DataView, at: number): [string[], number] {
  const n = v.getUint32(at, true);
  const out: string[] = [];
  let p = at + 4;
  for (let i = 0; i < n; i++) {
    const [a, next] = readAddress(v, p);
    out.push(a);
    p = next;
  }
  return [out, p];
}

export interface DecodedToken {
  version: string;
  protocolId: bigint;
  createTimestamp: bigint;
  expireTimestamp: bigint;
  timeoutSeconds: number;
  serverAddresses: string[];
  clientToServerKey: Buffer;
  serverToClientKey: Buffer;
  /** Bytes after the public fields, which must all be zero. */
  publicPadding: Buffer;
  private: {
    clientId: bigint;
    timeoutSeconds: number;
    serverAddresses: string[];
    clientToServerKey: Buffer;
    serverToClientKey: Buffer;
    userData: Buffer;
    padding: Buffer;
  };
}

/** Reads a public token and decrypts its private part with `privateKey`. */
export function decodeToken(token: Uint8Array, privateKey: Uint8Array): DecodedToken {
  const t = Buffer.from(token);
  const v = new DataView(t.buffer, t.byteOffset, t.length);
  const nonce = t.subarray(37, 61);
  const sealed = t.subarray(61, 1085);
  const [serverAddresses, end] = readAddresses(v, 1089);
  const aad = Buffer.concat([t.subarray(0, 21), t.subarray(29, 37)]);
  const p = xchachaOpen(privateKey, nonce, aad, sealed);
  const pv = new DataView(p.buffer, p.byteOffset, p.length);
  const [privAddresses, pend] = readAddresses(pv, 12);
  return {
    version: t.subarray(0, 13).toString('latin1'),
    protocolId: v.getBigUint64(13, true),
    createTimestamp: v.getBigUint64(21, true),
    expireTimestamp: v.getBigUint64(29, true),
    timeoutSeconds: v.getInt32(1085, true),
    serverAddresses,
    clientToServerKey: t.subarray(end, end + 32),
    serverToClientKey: t.subarray(end + 32, end + 64),
    publicPadding: t.subarray(end + 64),
    private: {
      clientId: pv.getBigUint64(0, true),
      timeoutSeconds: pv.getInt32(8, true),
      serverAddresses: privAddresses,
      clientToServerKey: p.subarray(pend, pend + 32),
      serverToClientKey: p.subarray(pend + 32, pend + 64),
      userData: p.subarray(pend + 64, pend + 320),
      padding: p.subarray(pend + 320),
    },
  };
}

/** A connect token's public part, as a client reads it (nothing decrypted). */
export interface PublicToken {
  protocolId: bigint;
  expireTimestamp: bigint;
  nonce: Buffer;
  privateData: Buffer;
  timeoutSeconds: number;
  serverAddresses: string[];
  clientToServerKey: Buffer;
  serverToClientKey: Buffer;
}

/** Reads a token's public part. */
export function readPublicToken(token: Uint8Array): PublicToken {
  const t = Buffer.from(token);
  const v = new DataView(t.buffer, t.byteOffset, t.length);
  const [serverAddresses, end] = readAddresses(v, 1089);
  return {
    protocolId: v.getBigUint64(13, true),
    expireTimestamp: v.getBigUint64(29, true),
    nonce: t.subarray(37, 61),
    privateData: t.subarray(61, 1085),
    timeoutSeconds: v.getInt32(1085, true),
    serverAddresses,
    clientToServerKey: t.subarray(end, end + 32),
    serverToClientKey: t.subarray(end + 32, end + 64),
  };
}

const VERSION = Buffer.from('NETCODE 1.02\0', 'latin1');

/** The 1078-byte connection request for a token. */
export function requestPacket(p: PublicToken): Buffer {
  const b = Buffer.alloc(1078);
  VERSION.copy(b, 1);
  b.writeBigUInt64LE(p.protocolId, 14);
  b.writeBigUInt64LE(p.expireTimestamp, 22);
  p.nonce.copy(b, 30);
  p.privateData.copy(b, 54);
  return b;
}

function aad(protocolId: bigint, prefix: number): Buffer {
  const ad = Buffer.alloc(22);
  VERSION.copy(ad, 0);
  ad.writeBigUInt64LE(protocolId, 13);
  ad[21] = prefix;
  return ad;
}

function nonceOf(sequence: bigint): Buffer {
  const n = Buffer.alloc(12);
  n.writeBigUInt64LE(sequence, 4);
  return n;
}

/** An encrypted packet of `type` (1..6) with `sequence`, written as netcode 1.02 says. */
export function sealPacket(
  key: Uint8Array,
  protocolId: bigint,
  type: number,
  sequence: bigint,
  data: Uint8Array,
): Buffer {
  let seqLen = 1;
  while (seqLen < 8 && sequence >> BigInt(8 * seqLen) !== 0n) seqLen++;
  const prefix = (seqLen << 4) | type;
  const seq = Buffer.alloc(8);
  seq.writeBigUInt64LE(sequence);
  const c = createCipheriv('chacha20-poly1305', key, nonceOf(sequence), { authTagLength: 16 });
  c.setAAD(aad(protocolId, prefix), { plaintextLength: data.length });
  const body = Buffer.concat([c.update(data), c.final()]);
  return Buffer.concat([Buffer.of(prefix), seq.subarray(0, seqLen), body, c.getAuthTag()]);
}

/** Decrypts an encrypted packet; throws if it does not authenticate. */
export function openPacket(
  key: Uint8Array,
  protocolId: bigint,
  d: Uint8Array,
): { type: number; sequence: bigint; data: Buffer } {
  const b = Buffer.from(d);
  const prefix = b[0]!;
  const seqLen = prefix >> 4;
  const seq = Buffer.alloc(8);
  b.copy(seq, 0, 1, 1 + seqLen);
  const sequence = seq.readBigUInt64LE();
  const dc = createDecipheriv('chacha20-poly1305', key, nonceOf(sequence), { authTagLength: 16 });
  const body = b.subarray(1 + seqLen, b.length - 16);
  dc.setAAD(aad(protocolId, prefix), { plaintextLength: body.length });
  dc.setAuthTag(b.subarray(b.length - 16));
  return { type: prefix & 15, sequence, data: Buffer.concat([dc.update(body), dc.final()]) };
}

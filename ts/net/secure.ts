/**
 * Secure connections (netcode 1.02 under the UDP transport; docs/security.md):
 * the options of a secure listener and of a connection with a connect token,
 * validated before anything crosses to native code, what `peerInfo` returns,
 * and why a connection attempt failed.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { ConnectFailed, InvalidOption } from '../errors.js';
import { CONNECT_TOKEN_ADDRESSES_AT, CONNECT_TOKEN_BYTES, CONNECT_TOKEN_KEY_BYTES } from './token-layout.js';

/** What a secure listener needs (`listen({ secure })`). */
export interface SecureOptions {
  /** The 32 bytes shared with the backend that issues connect tokens. Never sent to clients. */
  privateKey: Uint8Array;
  /** The game's id (uint64): tokens for another are refused. */
  protocolId: bigint;
  /**
   * This server's address as the backend writes it in tokens (`ip:port`, `[ipv6]:port`): a
   * token that does not name it is refused. Default: the address the socket is bound to
   * (required when binding to `0.0.0.0` or `::`).
   */
  publicAddress?: string;
}

/** Who a peer is (`mgr.peerInfo(addr)`). */
export interface PeerInfo {
  /** `ip:port` (`[ip]:port` for IPv6), as `msg.sender` holds it. */
  address: string;
  /** The client id its connect token carries (secure listeners only). */
  clientId?: bigint;
  /** The 256 bytes of user data its connect token carries, zero padded (secure listeners only). */
  userData?: Uint8Array;
}

/** What `netOpen` takes for a secure endpoint (`native/src/napi/secure.rs`). */
export type NativeSecure =
  | Record<string, never>
  | { privateKey: Uint8Array; protocolId: Uint8Array; publicAddress?: string };

const MAX_U64 = (1n << 64n) - 1n;

/** `ip:port` or `[ipv6]:port` with a port of 1..65535. */
export function isSocketAddress(s: unknown): s is string {
  if (typeof s !== 'string') return false;
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s);
  if (m === null) return false;
  const port = Number(m[3]);
  const ipOk = m[1] !== undefined ? isIPv6(m[1]) && !m[1].includes('%') : isIPv4(m[2]!);
  return ipOk && port >= 1 && port <= 65535;
}

/** Checks `listen`'s `secure` option; returns it, or null when absent. */
export function validateSecure(v: unknown): SecureOptions | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'object') throw new InvalidOption('NetOptions.secure must be an object');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (k !== 'privateKey' && k !== 'protocolId' && k !== 'publicAddress') {
      throw new InvalidOption(
        `NetOptions.secure has no option '${k}' (it takes privateKey, protocolId, publicAddress)`,
      );
    }
  }
  const key = o.privateKey;
  if (!(key instanceof Uint8Array) || key.length !== CONNECT_TOKEN_KEY_BYTES) {
    throw new InvalidOption(
      `NetOptions.secure.privateKey must be a Uint8Array of ${CONNECT_TOKEN_KEY_BYTES} bytes` +
        (key instanceof Uint8Array ? `, got ${key.length}` : ''),
    );
  }
  const id = o.protocolId;
  if (typeof id !== 'bigint' || id < 0n || id > MAX_U64) {
    throw new InvalidOption(
      `NetOptions.secure.protocolId must be a bigint from 0 to 2^64-1, got ${String(id)}`,
    );
  }
  if (o.publicAddress !== undefined && !isSocketAddress(o.publicAddress)) {
    throw new InvalidOption(
      `NetOptions.secure.publicAddress must be ip:port or [ipv6]:port (port 1..65535), got ${JSON.stringify(o.publicAddress)}`,
    );
  }
  return v as SecureOptions;
}

/** Checks `connect`'s `token` option; returns it, or null when absent. */
export function validateToken(v: unknown): Uint8Array | null {
  if (v === undefined || v === null) return null;
  if (!(v instanceof Uint8Array) || v.length !== CONNECT_TOKEN_BYTES) {
    throw new InvalidOption(
      `NetOptions.token must be a Uint8Array of ${CONNECT_TOKEN_BYTES} bytes (a connect token)` +
        (v instanceof Uint8Array ? `, got ${v.length}` : ''),
    );
  }
  return v;
}

/** What `netOpen` is given for a listener with `secure`, or for a client with a token (`{}`). */
export function nativeSecure(s: SecureOptions | null): NativeSecure {
  if (s === null) return {};
  const protocolId = new Uint8Array(8);
  new DataView(protocolId.buffer).setBigUint64(0, s.protocolId, true);
  return s.publicAddress === undefined
    ? { privateKey: s.privateKey, protocolId }
    : { privateKey: s.privateKey, protocolId, publicAddress: s.publicAddress };
}

/**
 * The first server address a connect token names, as `ip:port` (`[ip]:port`), read from its
 * public part to choose where the client binds. Undefined for bytes that are not a token
 * (the addon then refuses it with the reason).
 */
export function firstTokenServer(token: Uint8Array): string | undefined {
  const v = new DataView(token.buffer, token.byteOffset, token.byteLength);
  const at = CONNECT_TOKEN_ADDRESSES_AT;
  if (v.getUint32(at, true) < 1) return undefined;
  const type = v.getUint8(at + 4);
  if (type === 1) {
    const ip = [1, 2, 3, 4].map((i) => v.getUint8(at + 4 + i)).join('.');
    return `${ip}:${v.getUint16(at + 9, true)}`;
  }
  if (type === 2) {
    const groups = Array.from({ length: 8 }, (_, i) => v.getUint16(at + 5 + 2 * i, true).toString(16));
    const host = new URL(`http://[${groups.join(':')}]`).hostname;
    return `${host}:${v.getUint16(at + 21, true)}`;
  }
  return undefined;
}

/** The host of a token's first server (where a client binds follows from it). */
export function tokenHost(token: Uint8Array): string {
  const a = firstTokenServer(token);
  if (a === undefined) return '0.0.0.0';
  return a.slice(0, a.lastIndexOf(':')).replace(/^\[|\]$/g, '');
}

/** What each way a connection attempt can end means, for its rejection's message. */
const WHY: Readonly<Record<string, string>> = {
  refused: 'the listener is full',
  timeout:
    'nothing answered. Is a listener bound there, and is it ticking? A listener answers handshakes from its tick (mgr.start() or mgr.tick())',
  'token-required': 'it is a secure listener, which takes connect tokens only: connect({ token })',
  'not-secure': 'it is an ordinary listener, which takes no connect tokens',
  'connect token expired': 'the token expired before a server accepted it',
  'invalid connect token': 'the token could not be read',
  'connection request timed out':
    'no server answered the connection request (the token may be expired, for another server or game, or in use from another address)',
  'connection response timed out': 'the server did not confirm the challenge response',
  'connection denied': 'the server is full',
  'connection timed out': 'the server went silent',
};

/**
 * The error a failed connection attempt rejects with. For a secure attempt, `reason` is the
 * netcode client's state (`'connection denied'`, `'connection request timed out'`, ...).
 */
export function connectFailed(addr: string, reason: string, secure: boolean): ConnectFailed {
  const shown = secure && reason === 'not-secure' ? 'connection denied' : reason;
  const what = secure ? 'the secure handshake' : 'the handshake';
  return new ConnectFailed(
    `connect: ${what} with ${addr} failed (${shown}): ${WHY[reason] ?? reason}`,
    shown,
  );
}

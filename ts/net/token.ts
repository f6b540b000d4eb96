/**
 * netcode 1.02 connect tokens, issued by the backend that authenticated a player
 * (docs/netcode.md). The options are validated here; the token is made natively
 * with OpenSSL's ChaCha20-Poly1305 (the copy Node carries).
 */
import { InvalidOption, NativeLoadError } from '../errors.js';
import { native } from '../native.js';
import { isSocketAddress } from './secure.js';

import {
  CONNECT_TOKEN_KEY_BYTES,
  CONNECT_TOKEN_MAX_SERVERS,
  CONNECT_TOKEN_USER_DATA_BYTES,
} from './token-layout.js';

export {
  CONNECT_TOKEN_BYTES,
  CONNECT_TOKEN_KEY_BYTES,
  CONNECT_TOKEN_MAX_SERVERS,
  CONNECT_TOKEN_USER_DATA_BYTES,
} from './token-layout.js';

const MAX_U64 = (1n << 64n) - 1n;
const MAX_I32 = 2 ** 31 - 1;

/** What `generateConnectToken` needs. */
export interface ConnectTokenOptions {
  /** 32 bytes shared by the backend and the dedicated servers; never sent to clients. */
  privateKey: Uint8Array;
  /** The game's id (uint64); servers refuse tokens for another. */
  protocolId: bigint;
  /** Who this player is (uint64), as the server will see it. */
  clientId: bigint;
  /** 1..32 servers as `ip:port` or `[ipv6]:port`, tried in order. */
  serverAddresses: readonly string[];
  /** Seconds until servers refuse the token, 1..2^31-1. Default 30. */
  expireSeconds?: number;
  /** Seconds of silence before either side gives up, 1..2^31-1, or -1 for never (development only). Default 10. */
  timeoutSeconds?: number;
  /** Up to 256 bytes handed to the server (zero padded). Default none. */
  userData?: Uint8Array;
}

function uint64(o: Record<string, unknown>, key: string): Uint8Array {
  const v = o[key];
  if (typeof v !== 'bigint' || v < 0n || v > MAX_U64) {
    throw new InvalidOption(`ConnectTokenOptions.${key} must be a bigint from 0 to 2^64-1, got ${String(v)}`);
  }
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return b;
}

function addresses(v: unknown): string {
  if (!Array.isArray(v) || v.length < 1 || v.length > CONNECT_TOKEN_MAX_SERVERS) {
    throw new InvalidOption(
      `ConnectTokenOptions.serverAddresses must be an array of 1 to ${CONNECT_TOKEN_MAX_SERVERS} addresses`,
    );
  }
  for (const a of v) {
    if (!isSocketAddress(a)) {
      throw new InvalidOption(
        `ConnectTokenOptions.serverAddresses: ${JSON.stringify(a)} is not ip:port or [ipv6]:port (port 1..65535)`,
      );
    }
  }
  return v.join('\n');
}

function seconds(o: Record<string, unknown>, key: string, fallback: number, allowNever: boolean): number {
  const v = o[key] ?? fallback;
  const ok =
    typeof v === 'number' && Number.isInteger(v) && ((v >= 1 && v <= MAX_I32) || (allowNever && v === -1));
  if (!ok) {
    const range = allowNever ? '1 to 2^31-1, or -1 for no timeout' : '1 to 2^31-1';
    throw new InvalidOption(`ConnectTokenOptions.${key} must be an integer from ${range}, got ${String(v)}`);
  }
  return v;
}

/**
 * Issues a 2048-byte netcode 1.02 connect token for one player. Its private part is
 * encrypted with `privateKey` (XChaCha20-Poly1305); hand the whole token to the
 * client over HTTPS. Throws InvalidOption naming the option at fault, or
 * NativeLoadError if this Node does not export the OpenSSL functions tsage needs.
 */
export function generateConnectToken(options: ConnectTokenOptions): Uint8Array {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOption('generateConnectToken: options must be an object');
  }
  const o = options as unknown as Record<string, unknown>;
  const key = o.privateKey;
  if (!(key instanceof Uint8Array) || key.length !== CONNECT_TOKEN_KEY_BYTES) {
    throw new InvalidOption(
      `ConnectTokenOptions.privateKey must be a Uint8Array of ${CONNECT_TOKEN_KEY_BYTES} bytes` +
        (key instanceof Uint8Array ? `, got ${key.length}` : ''),
    );
  }
  const protocolId = uint64(o, 'protocolId');
  const clientId = uint64(o, 'clientId');
  const servers = addresses(o.serverAddresses);
  const expireSeconds = seconds(o, 'expireSeconds', 30, false);
  const timeoutSeconds = seconds(o, 'timeoutSeconds', 10, true);
  const userData = o.userData ?? new Uint8Array(0);
  if (!(userData instanceof Uint8Array) || userData.length > CONNECT_TOKEN_USER_DATA_BYTES) {
    throw new InvalidOption(
      `ConnectTokenOptions.userData must be a Uint8Array of at most ${CONNECT_TOKEN_USER_DATA_BYTES} bytes` +
        (userData instanceof Uint8Array ? `, got ${userData.length}` : ''),
    );
  }
  let token: ArrayBuffer;
  try {
    token = native().netcodeGenerateToken(
      key,
      protocolId,
      clientId,
      servers,
      expireSeconds,
      timeoutSeconds,
      userData,
    );
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ERR_TSAGE_NATIVE_LOAD') {
      throw new NativeLoadError((err as Error).message, { cause: err });
    }
    throw err;
  }
  return new Uint8Array(token);
}

/**
 * The sizes of netcode 1.02 connect tokens (docs/netcode.md), kept apart from
 * the code that makes them so that option validation can read them without
 * loading the addon.
 */

/** Bytes in a connect token. */
export const CONNECT_TOKEN_BYTES = 2048;
/** Bytes in the key shared by the backend and the dedicated servers. */
export const CONNECT_TOKEN_KEY_BYTES = 32;
/** Most bytes of user data a token carries to the server. */
export const CONNECT_TOKEN_USER_DATA_BYTES = 256;
/** Most server addresses in one token. */
export const CONNECT_TOKEN_MAX_SERVERS = 32;
/**
 * Where the server addresses begin in a public token: after the version info (13), protocol
 * id (8), create and expire timestamps (8 + 8), nonce (24), private part (1024) and timeout (4).
 */
export const CONNECT_TOKEN_ADDRESSES_AT = 13 + 8 + 8 + 8 + 24 + 1024 + 4;

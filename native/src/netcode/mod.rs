//! netcode 1.02 (the mas-bandwidth/netcode `STANDARD.md`), pure.
//!
//! Nothing here owns a socket or reads a clock: [`Server`] and [`Client`]
//! take datagrams, a monotonic `now` in milliseconds and, where a token's
//! expiry matters, unix seconds, and put the datagrams to send and their
//! events into an [`Outbox`]. The payload bytes they carry are opaque.
//!
//! Files, one concern each: `wire` (little-endian cursors), `address`
//! (server addresses in tokens), [`token`] (the connect token, public and
//! private), [`challenge`] (the challenge token), [`packet`] (the seven
//! packets, prefix byte, sequence, associated data and nonce, reading in the
//! standard's order), [`replay`] (the replay window), `mappings` (the
//! server's pending encryption mappings and used-token history), `stats`
//! (why packets were dropped), `outbox`, `server` and `client`. The choices
//! the standard leaves open are listed in `docs/netcode.md`.

pub mod address;
pub mod challenge;
mod client;
mod mappings;
mod outbox;
pub mod packet;
pub mod replay;
mod server;
mod stats;
#[cfg(test)]
mod tests;
pub mod token;
mod wire;

pub use client::{Client, ClientError, ClientEvent, ClientState};
pub use outbox::{Outbox, Span};
pub use server::{DisconnectReason, Server, ServerConfig, ServerError, ServerEvent};
pub use stats::{DropReason, Stats};
pub use token::{generate_connect_token, ConnectToken, PrivateToken, TokenError, TokenParams};

/// `"NETCODE 1.02"` with its NUL terminator.
pub const VERSION_INFO: &[u8; 13] = b"NETCODE 1.02\0";
/// Bytes in a public connect token.
pub const CONNECT_TOKEN_BYTES: usize = 2048;
/// Bytes in the encrypted private part of a connect token (tag included).
pub const CONNECT_TOKEN_PRIVATE_BYTES: usize = 1024;
/// Bytes in a connect token's XChaCha20 nonce.
pub const CONNECT_TOKEN_NONCE_BYTES: usize = 24;
/// Bytes in an encrypted challenge token (tag included).
pub const CHALLENGE_TOKEN_BYTES: usize = 300;
/// Bytes of user data in a token.
pub const USER_DATA_BYTES: usize = 256;
/// Most server addresses in one connect token.
pub const MAX_SERVERS_PER_CONNECT: usize = 32;
/// Largest payload of one payload packet.
pub const MAX_PAYLOAD_BYTES: usize = 1200;
/// Largest encrypted packet: prefix, 8 sequence bytes, payload, tag.
pub const MAX_PACKET_BYTES: usize = 1 + 8 + MAX_PAYLOAD_BYTES + 16;
/// The exact size of a connection request: prefix, version, protocol id,
/// expire timestamp, token nonce, private token. (`STANDARD.md` still says
/// 1062, the size before 1.02 widened the nonce to 24 bytes; the reference
/// implementation checks 1078.)
pub const REQUEST_PACKET_BYTES: usize = 1 + 13 + 8 + 8 + CONNECT_TOKEN_NONCE_BYTES + CONNECT_TOKEN_PRIVATE_BYTES;
/// Entries of the replay window per connection.
pub const REPLAY_BUFFER_SIZE: usize = 256;
/// Most client slots of one server.
pub const MAX_CLIENTS: usize = 65_535;
/// Interval of request, response and keep-alive packets (10 Hz).
pub const PACKET_SEND_INTERVAL_MS: u64 = 100;
/// Redundant disconnect packets sent when a side disconnects.
pub const NUM_DISCONNECT_PACKETS: usize = 10;
/// Encryption mappings a server keeps per client slot.
pub const MAPPINGS_PER_CLIENT: usize = 4;
/// Used-token history entries a server keeps per client slot.
pub const TOKEN_HISTORY_PER_CLIENT: usize = 8;

/// Milliseconds in `seconds` (negative counts as zero).
pub(crate) fn seconds_ms(seconds: i32) -> u64 {
    seconds.max(0) as u64 * 1000
}

//! tsage's native core.
//!
//! Plain Rust modules, one per concern, that know nothing of Node:
//! - [`shm`]: anonymous shared-memory regions (`memfd_create` + `mmap`);
//! - [`ring`]: single-producer single-consumer rings of records in such a region;
//! - [`net`]: the reliable-UDP protocol as a pure state machine, plus its socket driver;
//! - [`crypto`]: ChaCha20-Poly1305 through the OpenSSL that Node exports, HChaCha20,
//!   self-wiping secrets and random bytes;
//! - [`netcode`]: netcode 1.02 (connect tokens, encrypted packets, the client and
//!   server state machines), pure: datagrams and time in, datagrams and events out.
//!
//! [`napi`] is the only module that talks to Node: it declares the Node-API
//! functions, converts arguments and registers the exports. It is left out of
//! `cargo test` builds, which run without a Node process to resolve its symbols.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod crypto;
pub mod net;
pub mod netcode;
pub mod process;
pub mod ring;
pub mod shm;

#[cfg(not(test))]
mod napi;

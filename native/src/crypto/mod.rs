//! Cryptography for netcode, with no Node-API in it.
//!
//! - [`Aead`]: ChaCha20-Poly1305 (IETF: 12-byte nonce, 16-byte tag, associated
//!   data) through OpenSSL's EVP interface, plus XChaCha20-Poly1305 built from
//!   it and [`hchacha20`];
//! - [`hchacha20`]: the only primitive written here (tested against
//!   draft-irtf-cfrg-xchacha's vectors);
//! - [`Secret`]/[`Key`]: byte arrays that zero themselves on drop;
//!   [`fill_random`]: the kernel's CSPRNG (`getrandom`).
//!
//! OpenSSL is the copy Node already carries: its symbols are looked up at run
//! time on first use (see `ossl`), never linked, so a missing one is a
//! [`CryptoError::MissingSymbol`] naming it.

mod aead;
/// CPU-clock micro-benches: `clock_gettime(CLOCK_THREAD_CPUTIME_ID)` as 64-bit Linux has it.
#[cfg(all(test, target_os = "linux", target_pointer_width = "64"))]
pub(crate) mod cost;
mod hchacha;
mod ossl;
#[cfg(test)]
mod raw;
mod secret;
#[cfg(test)]
mod tests;

use std::fmt;

pub use aead::Aead;
pub use hchacha::hchacha20;
pub use secret::{fill_random, wipe, Key, Secret};

/// Bytes in a ChaCha20-Poly1305 key.
pub const KEY_BYTES: usize = 32;
/// Bytes in an IETF ChaCha20-Poly1305 nonce.
pub const NONCE_BYTES: usize = 12;
/// Bytes in an XChaCha20-Poly1305 nonce.
pub const XNONCE_BYTES: usize = 24;
/// Bytes in a Poly1305 tag.
pub const TAG_BYTES: usize = 16;

/// Why a cryptographic operation did not happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CryptoError {
    /// This process does not export the named OpenSSL function.
    MissingSymbol(&'static str),
    /// The library that should provide OpenSSL could not be opened (test builds).
    Unavailable(&'static str),
    /// The named OpenSSL call reported failure.
    Failed(&'static str),
    /// The ciphertext, its tag or its associated data failed authentication.
    Forged,
    /// `getrandom` failed with this errno.
    Random(i32),
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CryptoError::MissingSymbol(s) => write!(
                f,
                "OpenSSL symbol {s} was not found in this process (tsage uses the OpenSSL that Node exports)"
            ),
            CryptoError::Unavailable(what) => write!(f, "could not open {what}"),
            CryptoError::Failed(call) => write!(f, "OpenSSL call {call} failed"),
            CryptoError::Forged => f.write_str("authentication failed (wrong key, or the data was changed)"),
            CryptoError::Random(errno) => write!(f, "getrandom failed (errno {errno})"),
        }
    }
}

impl std::error::Error for CryptoError {}

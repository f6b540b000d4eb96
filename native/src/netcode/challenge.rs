//! The challenge token (netcode 1.02, "Challenge Token"): client id and user
//! data, zero padded to 300 bytes, of which the first 284 are encrypted with
//! ChaCha20-Poly1305 under a key only the server knows (no associated data,
//! nonce `0000 || sequence`) and the last 16 hold the tag. The client echoes
//! it back, which proves it receives packets at the address it claims.

use super::packet::sequence_nonce;
use super::wire::{Reader, Writer};
use super::{CHALLENGE_TOKEN_BYTES, USER_DATA_BYTES};
use crate::crypto::{Aead, CryptoError, Key, Secret, TAG_BYTES};

/// A challenge token's contents.
#[derive(Debug)]
pub struct ChallengeToken {
    /// The client id from the connect token.
    pub client_id: u64,
    /// The user data from the connect token.
    pub user_data: Secret<USER_DATA_BYTES>,
}

impl ChallengeToken {
    /// Writes the plaintext layout, zero padded.
    pub fn write(&self, out: &mut [u8; CHALLENGE_TOKEN_BYTES]) {
        let mut w = Writer::new(out);
        w.u64(self.client_id);
        w.bytes(self.user_data.bytes());
        w.pad();
    }

    /// Reads the plaintext layout (it cannot fail: every byte string is one).
    pub fn read(buf: &[u8; CHALLENGE_TOKEN_BYTES]) -> Self {
        let mut r = Reader::new(buf);
        let client_id = r.u64().expect("300 > 8");
        let user_data = Secret::from_slice(r.bytes(USER_DATA_BYTES).expect("300 > 264")).expect("256 bytes");
        ChallengeToken { client_id, user_data }
    }
}

/// Encrypts a written challenge token in place.
pub fn encrypt_challenge(
    aead: &mut Aead,
    buf: &mut [u8; CHALLENGE_TOKEN_BYTES],
    sequence: u64,
    key: &Key,
) -> Result<(), CryptoError> {
    let (body, tag) = buf.split_at_mut(CHALLENGE_TOKEN_BYTES - TAG_BYTES);
    tag.copy_from_slice(&aead.seal_in_place(key, &sequence_nonce(sequence), &[], body)?);
    Ok(())
}

/// Decrypts a challenge token in place (zeroed if it fails).
pub fn decrypt_challenge(
    aead: &mut Aead,
    buf: &mut [u8; CHALLENGE_TOKEN_BYTES],
    sequence: u64,
    key: &Key,
) -> Result<(), CryptoError> {
    let (body, tag) = buf.split_at_mut(CHALLENGE_TOKEN_BYTES - TAG_BYTES);
    let t: [u8; TAG_BYTES] = (&*tag).try_into().expect("TAG_BYTES bytes");
    aead.open_in_place(key, &sequence_nonce(sequence), &[], body, &t)
}

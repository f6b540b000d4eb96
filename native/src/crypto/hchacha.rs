//! HChaCha20 (draft-irtf-cfrg-xchacha §2.2): the ChaCha20 block function over
//! key and a 128-bit nonce, without the final addition, keeping state words
//! 0..4 and 12..16 as a 256-bit subkey. The one primitive tsage writes itself;
//! everything else goes through OpenSSL.

use super::secret::Key;

#[inline(always)]
fn quarter_round(s: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
    s[a] = s[a].wrapping_add(s[b]);
    s[d] = (s[d] ^ s[a]).rotate_left(16);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_left(12);
    s[a] = s[a].wrapping_add(s[b]);
    s[d] = (s[d] ^ s[a]).rotate_left(8);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_left(7);
}

fn word(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
}

/// HChaCha20 of `key` and `nonce` (the first 16 bytes of an XChaCha nonce).
pub fn hchacha20(key: &[u8; 32], nonce: &[u8; 16]) -> Key {
    let mut s = [0u32; 16];
    s[..4].copy_from_slice(&[0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574]);
    for i in 0..8 {
        s[4 + i] = word(key, i);
    }
    for i in 0..4 {
        s[12 + i] = word(nonce, i);
    }
    for _ in 0..10 {
        quarter_round(&mut s, 0, 4, 8, 12);
        quarter_round(&mut s, 1, 5, 9, 13);
        quarter_round(&mut s, 2, 6, 10, 14);
        quarter_round(&mut s, 3, 7, 11, 15);
        quarter_round(&mut s, 0, 5, 10, 15);
        quarter_round(&mut s, 1, 6, 11, 12);
        quarter_round(&mut s, 2, 7, 8, 13);
        quarter_round(&mut s, 3, 4, 9, 14);
    }
    let mut out = Key::zero();
    let o = out.bytes_mut();
    for (i, w) in s[..4].iter().chain(&s[12..]).enumerate() {
        o[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
    }
    for w in s.iter_mut() {
        // SAFETY: w is a valid exclusive reference into the local state.
        unsafe { std::ptr::write_volatile(w, 0) };
    }
    out
}

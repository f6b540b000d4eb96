//! Known-answer and failure tests of the crypto module (system libcrypto.so.3).

use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::time::Instant;

use super::ossl::{libcrypto_symbol, Ossl, SYMBOLS};
use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn key_from(range_start: u8) -> Key {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = range_start.wrapping_add(i as u8);
    }
    Key::from_bytes(k)
}

const SUNSCREEN: &[u8] = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
const AAD: &str = "50515253c0c1c2c3c4c5c6c7";

/// RFC 8439 section 2.8.2.
const RFC8439_CT: &str = "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b\
    1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d2\
    6586cec64b6116";
const RFC8439_TAG: &str = "1ae10b594f09e26a7e902ecbd0600691";

/// draft-irtf-cfrg-xchacha-03 appendix A.3.1.
const XCHACHA_CT: &str = "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39\
    ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f6\
    15c68b13b52e";
const XCHACHA_TAG: &str = "c0875924c1c7987947deafd8780acf49";

#[test]
fn should_derive_the_draft_hchacha20_subkey() {
    let mut key = [0u8; 32];
    key.copy_from_slice(&hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"));
    let mut nonce = [0u8; 16];
    nonce.copy_from_slice(&hex("000000090000004a0000000031415927"));
    let sub = hchacha20(&key, &nonce);
    assert_eq!(
        sub.bytes().as_slice(),
        hex("82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc")
    );
}

#[test]
fn should_seal_the_rfc8439_vector() {
    let mut aead = Aead::new().unwrap();
    let nonce: [u8; 12] = hex("070000004041424344454647").try_into().unwrap();
    let mut buf = SUNSCREEN.to_vec();
    let tag = aead
        .seal_in_place(&key_from(0x80), &nonce, &hex(AAD), &mut buf)
        .unwrap();
    assert_eq!(buf, hex(RFC8439_CT));
    assert_eq!(tag.as_slice(), hex(RFC8439_TAG));
}

#[test]
fn should_open_the_rfc8439_vector_in_place_and_out_of_place() {
    let mut aead = Aead::new().unwrap();
    let nonce: [u8; 12] = hex("070000004041424344454647").try_into().unwrap();
    let tag: [u8; 16] = hex(RFC8439_TAG).try_into().unwrap();
    let mut buf = hex(RFC8439_CT);
    aead.open_in_place(&key_from(0x80), &nonce, &hex(AAD), &mut buf, &tag)
        .unwrap();
    assert_eq!(buf, SUNSCREEN);
    let mut out = vec![0u8; SUNSCREEN.len() + 7];
    aead.open(&key_from(0x80), &nonce, &hex(AAD), &hex(RFC8439_CT), &tag, &mut out)
        .unwrap();
    assert_eq!(&out[..SUNSCREEN.len()], SUNSCREEN);
}

#[test]
fn should_refuse_and_wipe_when_any_bit_of_ciphertext_tag_nonce_or_aad_flips() {
    let mut aead = Aead::new().unwrap();
    let key = key_from(0x80);
    let nonce: [u8; 12] = hex("070000004041424344454647").try_into().unwrap();
    let aad = hex(AAD);
    let ct = hex(RFC8439_CT);
    let tag: [u8; 16] = hex(RFC8439_TAG).try_into().unwrap();
    for bit in 0..(ct.len() + 16 + 12 + aad.len()) * 8 {
        let (mut c, mut t, mut n, mut a) = (ct.clone(), tag, nonce, aad.clone());
        let (i, m) = (bit / 8, 1u8 << (bit % 8));
        match i {
            i if i < ct.len() => c[i] ^= m,
            i if i < ct.len() + 16 => t[i - ct.len()] ^= m,
            i if i < ct.len() + 28 => n[i - ct.len() - 16] ^= m,
            i => a[i - ct.len() - 28] ^= m,
        }
        assert_eq!(
            aead.open_in_place(&key, &n, &a, &mut c, &t),
            Err(CryptoError::Forged),
            "bit {bit}"
        );
        assert!(
            c.iter().all(|&b| b == 0),
            "bit {bit}: unauthenticated plaintext left behind"
        );
    }
    let mut wrong = key.clone();
    wrong.bytes_mut()[31] ^= 1;
    let mut c = ct.clone();
    assert_eq!(
        aead.open_in_place(&wrong, &nonce, &aad, &mut c, &tag),
        Err(CryptoError::Forged)
    );
    let mut c = ct.clone();
    aead.open_in_place(&key, &nonce, &aad, &mut c, &tag).unwrap();
    assert_eq!(c, SUNSCREEN, "a refused message leaves the context usable");
}

#[test]
fn should_seal_and_open_the_draft_xchacha20_poly1305_vector() {
    let mut aead = Aead::new().unwrap();
    let nonce: [u8; 24] = hex("404142434445464748494a4b4c4d4e4f5051525354555657")
        .try_into()
        .unwrap();
    let mut buf = SUNSCREEN.to_vec();
    let tag = aead
        .xseal_in_place(&key_from(0x80), &nonce, &hex(AAD), &mut buf)
        .unwrap();
    assert_eq!(buf, hex(XCHACHA_CT));
    assert_eq!(tag.as_slice(), hex(XCHACHA_TAG));
    aead.xopen_in_place(&key_from(0x80), &nonce, &hex(AAD), &mut buf, &tag)
        .unwrap();
    assert_eq!(buf, SUNSCREEN);
    let mut bad = nonce;
    bad[23] ^= 0x80;
    let mut c = hex(XCHACHA_CT);
    assert_eq!(
        aead.xopen_in_place(&key_from(0x80), &bad, &hex(AAD), &mut c, &tag),
        Err(CryptoError::Forged)
    );
}

#[test]
fn should_seal_and_open_empty_messages_and_empty_associated_data() {
    let mut aead = Aead::new().unwrap();
    let key = key_from(1);
    let nonce = [9u8; 12];
    let tag = aead.seal_in_place(&key, &nonce, &[], &mut []).unwrap();
    aead.open_in_place(&key, &nonce, &[], &mut [], &tag).unwrap();
    assert_eq!(
        aead.open_in_place(&key, &nonce, b"x", &mut [], &tag),
        Err(CryptoError::Forged)
    );
}

#[test]
fn should_name_each_missing_openssl_symbol() {
    for missing in SYMBOLS {
        // SAFETY: every name but `missing` resolves to its libcrypto function.
        let r = unsafe {
            Ossl::load(|n: &CStr| {
                if n == missing {
                    std::ptr::null_mut()
                } else {
                    libcrypto_symbol(n)
                }
            })
        };
        let err = r.err().expect("a missing symbol must fail the load");
        assert_eq!(err, CryptoError::MissingSymbol(missing.to_str().unwrap()));
        assert!(err.to_string().contains(missing.to_str().unwrap()));
    }
}

#[test]
fn should_fill_random_bytes_that_differ_between_calls() {
    let a = Key::random().unwrap();
    let b = Key::random().unwrap();
    assert_ne!(a, b);
    assert_ne!(a, Key::zero());
    let mut big = vec![0u8; 100_000];
    fill_random(&mut big).unwrap();
    assert!(big.iter().filter(|&&b| b == 0).count() < 1_000);
}

#[test]
fn should_zero_a_secret_when_it_is_dropped() {
    let mut slot = MaybeUninit::new(Secret::<64>::from_bytes([0xa5; 64]));
    // SAFETY: slot holds a live Secret, dropped exactly once here; Secret is
    // repr(transparent) over [u8; 64], whose bytes stay initialised (Drop only
    // overwrites them), so reading them back afterwards is sound.
    let after: [u8; 64] = unsafe {
        std::ptr::drop_in_place(slot.as_mut_ptr());
        std::ptr::read(slot.as_ptr().cast::<[u8; 64]>())
    };
    assert_eq!(after, [0u8; 64]);
    assert_eq!(format!("{:?}", Key::from_bytes([1; 32])), "Secret<32>(..)");
}

#[test]
fn should_measure_seal_plus_open_of_a_1200_byte_packet() {
    let mut aead = Aead::new().unwrap();
    let key = key_from(3);
    let aad = [7u8; 22];
    let mut buf = vec![0x5au8; 1200];
    let rounds = 20_000u64;
    let start = Instant::now();
    for i in 0..rounds {
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&i.to_le_bytes());
        let tag = aead.seal_in_place(&key, &nonce, &aad, &mut buf).unwrap();
        aead.open_in_place(&key, &nonce, &aad, &mut buf, &tag).unwrap();
    }
    let ns = start.elapsed().as_nanos() as u64 / rounds;
    assert!(
        buf.iter().all(|&b| b == 0x5a),
        "every round trip restores the plaintext"
    );
    println!("ChaCha20-Poly1305 seal+open of 1200 bytes: {ns} ns/packet ({rounds} rounds)");
}

#[test]
fn should_seal_and_open_the_same_whether_a_context_holds_the_key_already_or_not() {
    // One engine through keys in turn (each context re-keyed, or given only a nonce when the key
    // is the one it holds) against a fresh engine per message: the same ciphertext and tag.
    let keys = [
        key_from(1),
        key_from(2),
        key_from(1),
        key_from(1),
        key_from(3),
        key_from(2),
    ];
    let aad = [9u8; 22];
    let mut reused = Aead::new().unwrap();
    for (i, key) in keys.iter().enumerate() {
        let mut nonce = [0u8; 12];
        nonce[4] = i as u8;
        let plain: Vec<u8> = (0..300).map(|b| (b as u8) ^ (i as u8)).collect();
        let (mut a, mut b) = (plain.clone(), plain.clone());
        let ta = reused.seal_in_place(key, &nonce, &aad, &mut a).unwrap();
        let tb = Aead::new().unwrap().seal_in_place(key, &nonce, &aad, &mut b).unwrap();
        assert_eq!((a.clone(), ta), (b, tb), "message {i}");
        reused.open_in_place(key, &nonce, &aad, &mut a, &ta).unwrap();
        assert_eq!(a, plain, "message {i} opens");
        let other = &keys[(i + 1) % keys.len()];
        if other.bytes() != key.bytes() {
            let mut c = plain.clone();
            let tc = Aead::new().unwrap().seal_in_place(key, &nonce, &aad, &mut c).unwrap();
            assert!(
                reused.open_in_place(other, &nonce, &aad, &mut c, &tc).is_err(),
                "message {i} under another key"
            );
        }
    }
}

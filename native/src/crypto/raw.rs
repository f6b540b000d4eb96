//! The raw OpenSSL call sequence for one ChaCha20-Poly1305 message, done the
//! minimal way, for tests to hold [`Aead`](super::Aead) against (test builds only).

use std::ffi::c_int;
use std::ptr;

use super::ossl::{ossl, EvpCipherCtx, Ossl, CTRL_AEAD_GET_TAG, CTRL_AEAD_SET_IVLEN, CTRL_AEAD_SET_TAG};
use super::{Key, NONCE_BYTES, TAG_BYTES};

/// One context, given the cipher, key and IV length once: each message sets only its
/// nonce, feeds the associated data, runs the cipher over the body in one update, in
/// place, and finishes: the least the EVP interface allows for an AEAD message, and the
/// call sequence [`Aead`](super::Aead) made before it split the body (see `aead::CHUNK`).
pub(super) struct Raw {
    api: &'static Ossl,
    ctx: *mut EvpCipherCtx,
}

impl Raw {
    pub(super) fn new(key: &Key, enc: c_int) -> Raw {
        let api = ossl().unwrap();
        // SAFETY: EVP_CIPHER_CTX_new has no preconditions.
        let ctx = unsafe { (api.ctx_new)() };
        assert!(!ctx.is_null());
        // SAFETY: ctx is a fresh context and the cipher OpenSSL's static table; the key
        // points to 32 readable bytes; a null IV is set per message.
        let ok = unsafe {
            (api.init)(
                ctx,
                (api.chacha20_poly1305)(),
                ptr::null_mut(),
                ptr::null(),
                ptr::null(),
                enc,
            ) == 1
                && (api.ctx_ctrl)(ctx, CTRL_AEAD_SET_IVLEN, NONCE_BYTES as c_int, ptr::null_mut()) == 1
                && (api.init)(ctx, ptr::null(), ptr::null_mut(), key.bytes().as_ptr(), ptr::null(), -1) == 1
        };
        assert!(ok, "raw context setup");
        Raw { api, ctx }
    }

    /// Nonce, associated data, the bytes in place; the caller finishes.
    pub(super) fn run(&mut self, n: &[u8; NONCE_BYTES], aad: &[u8], buf: &mut [u8]) {
        let (mut o1, mut o2) = (0, 0);
        // SAFETY: live context holding cipher and key; n is 12 bytes, aad and buf are
        // valid for their lengths (buf in place, which OpenSSL allows).
        let ok = unsafe {
            (self.api.init)(self.ctx, ptr::null(), ptr::null_mut(), ptr::null(), n.as_ptr(), -1) == 1
                && (self.api.update)(self.ctx, ptr::null_mut(), &mut o1, aad.as_ptr(), aad.len() as c_int) == 1
                && (self.api.update)(self.ctx, buf.as_mut_ptr(), &mut o2, buf.as_ptr(), buf.len() as c_int) == 1
        };
        assert!(ok, "raw update");
    }

    pub(super) fn seal(&mut self, n: &[u8; NONCE_BYTES], aad: &[u8], buf: &mut [u8]) -> [u8; TAG_BYTES] {
        self.run(n, aad, buf);
        let (mut tag, mut outl) = ([0u8; TAG_BYTES], 0);
        // SAFETY: a stream cipher's final writes nothing (tag has room anyway); the tag
        // control writes TAG_BYTES into tag.
        let ok = unsafe {
            (self.api.finish)(self.ctx, tag.as_mut_ptr(), &mut outl) == 1
                && (self.api.ctx_ctrl)(self.ctx, CTRL_AEAD_GET_TAG, TAG_BYTES as c_int, tag.as_mut_ptr().cast()) == 1
        };
        assert!(ok, "raw seal final");
        tag
    }

    pub(super) fn open(&mut self, n: &[u8; NONCE_BYTES], aad: &[u8], buf: &mut [u8], tag: &[u8; TAG_BYTES]) -> bool {
        let mut outl = 0;
        // SAFETY: OpenSSL reads the 16 tag bytes only, despite the mutable pointer type.
        let set =
            unsafe { (self.api.ctx_ctrl)(self.ctx, CTRL_AEAD_SET_TAG, TAG_BYTES as c_int, tag.as_ptr() as *mut _) };
        assert_eq!(set, 1, "raw set tag");
        self.run(n, aad, buf);
        let mut tail = [0u8; 16];
        // SAFETY: live context; tail has room for anything final could write.
        unsafe { (self.api.finish)(self.ctx, tail.as_mut_ptr(), &mut outl) == 1 }
    }

    /// The first `steps` of a seal, to time each (0: nothing; 1: the nonce; 2: and the associated
    /// data; 3: and the body, fed as `Aead` feeds it, 1024 bytes and the rest; 4: and the final;
    /// 5: and the tag). A message left unfinished is abandoned by the next one's nonce.
    pub(super) fn seal_steps(&mut self, n: &[u8; NONCE_BYTES], aad: &[u8], buf: &mut [u8], steps: u32) {
        let (api, ctx) = (self.api, self.ctx);
        let (mut outl, mut tag) = (0, [0u8; TAG_BYTES]);
        let whole = buf.len().min(1024);
        let (head, rest) = buf.split_at_mut(whole);
        let mut ok = [1; 6];
        // SAFETY: (each call) ctx is live and holds the cipher and key; n is 12 bytes; aad,
        // head and rest are valid for their lengths (in place, which OpenSSL allows); the
        // final writes nothing for a stream cipher (tag has room anyway) and the tag control
        // writes 16 bytes into tag.
        unsafe {
            if steps >= 1 {
                ok[0] = (api.init)(ctx, ptr::null(), ptr::null_mut(), ptr::null(), n.as_ptr(), -1);
            }
            if steps >= 2 {
                ok[1] = (api.update)(ctx, ptr::null_mut(), &mut outl, aad.as_ptr(), aad.len() as c_int);
            }
            if steps >= 3 {
                ok[2] = (api.update)(ctx, head.as_mut_ptr(), &mut outl, head.as_ptr(), head.len() as c_int);
                if !rest.is_empty() {
                    ok[3] = (api.update)(ctx, rest.as_mut_ptr(), &mut outl, rest.as_ptr(), rest.len() as c_int);
                }
            }
            if steps >= 4 {
                ok[4] = (api.finish)(ctx, tag.as_mut_ptr(), &mut outl);
            }
            if steps >= 5 {
                ok[5] = (api.ctx_ctrl)(ctx, CTRL_AEAD_GET_TAG, TAG_BYTES as c_int, tag.as_mut_ptr().cast());
            }
        }
        assert_eq!(ok, [1; 6], "raw seal, {steps} steps");
    }

    /// The bulk cipher alone, continuing one message (no nonce, no associated data, no tag).
    pub(super) fn update_only(&mut self, buf: &mut [u8]) {
        let mut outl = 0;
        // SAFETY: live context mid-message; buf is valid for its length, in place.
        let ok = unsafe { (self.api.update)(self.ctx, buf.as_mut_ptr(), &mut outl, buf.as_ptr(), buf.len() as c_int) };
        assert_eq!(ok, 1, "raw update only");
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        // SAFETY: ctx came from EVP_CIPHER_CTX_new and is freed once, here.
        unsafe { (self.api.ctx_free)(self.ctx) };
    }
}

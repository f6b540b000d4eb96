//! ChaCha20-Poly1305 (IETF, RFC 8439) through OpenSSL's EVP interface, and
//! XChaCha20-Poly1305 built on it with [`hchacha20`](super::hchacha20).
//!
//! An [`Aead`] owns two cipher contexts, one per direction, set up once with
//! the cipher; each message only re-keys them (`EVP_CipherInit_ex` with a null
//! cipher), so a packet pays no allocation. A context keeps the key it was
//! last given: a message under the same key sets only the nonce, which skips
//! OpenSSL's key setup (a tenth of a 1200-byte packet's cost).

use std::ffi::c_int;
use std::ptr;

use super::ossl::{ossl, EvpCipherCtx, Ossl, CTRL_AEAD_GET_TAG, CTRL_AEAD_SET_IVLEN, CTRL_AEAD_SET_TAG};
use super::secret::{wipe, Key};
use super::{hchacha20, CryptoError, NONCE_BYTES, TAG_BYTES, XNONCE_BYTES};

/// A reusable ChaCha20-Poly1305 engine: one encrypting and one decrypting context.
pub struct Aead {
    api: &'static Ossl,
    seal_ctx: *mut EvpCipherCtx,
    open_ctx: *mut EvpCipherCtx,
    /// The key each context holds, if any (wiped on drop, as every key is).
    seal_key: Option<Key>,
    open_key: Option<Key>,
}

/// Which of the two contexts.
#[derive(Clone, Copy)]
enum Dir {
    Seal,
    Open,
}

// SAFETY: the contexts are owned by this value alone and only used through
// `&mut self`, so moving it to another thread cannot race; OpenSSL contexts
// carry no thread affinity.
unsafe impl Send for Aead {}

fn len_c(len: usize, what: &'static str) -> Result<c_int, CryptoError> {
    c_int::try_from(len).map_err(|_| CryptoError::Failed(what))
}

impl Aead {
    /// Resolves OpenSSL (first use only) and creates both contexts.
    pub fn new() -> Result<Aead, CryptoError> {
        let api = ossl()?;
        let mut a = Aead {
            api,
            seal_ctx: ptr::null_mut(),
            open_ctx: ptr::null_mut(),
            seal_key: None,
            open_key: None,
        };
        a.seal_ctx = a.new_ctx(1)?;
        a.open_ctx = a.new_ctx(0)?;
        Ok(a)
    }

    fn new_ctx(&self, enc: c_int) -> Result<*mut EvpCipherCtx, CryptoError> {
        // SAFETY: EVP_CIPHER_CTX_new has no preconditions.
        let ctx = unsafe { (self.api.ctx_new)() };
        if ctx.is_null() {
            return Err(CryptoError::Failed("EVP_CIPHER_CTX_new"));
        }
        // SAFETY: ctx is a fresh context; the cipher is OpenSSL's static table;
        // null key and iv only select the cipher and direction.
        let ok = unsafe {
            (self.api.init)(
                ctx,
                (self.api.chacha20_poly1305)(),
                ptr::null_mut(),
                ptr::null(),
                ptr::null(),
                enc,
            ) == 1
                && (self.api.ctx_ctrl)(ctx, CTRL_AEAD_SET_IVLEN, NONCE_BYTES as c_int, ptr::null_mut()) == 1
        };
        if !ok {
            // SAFETY: ctx came from EVP_CIPHER_CTX_new and is not used again.
            unsafe { (self.api.ctx_free)(ctx) };
            return Err(CryptoError::Failed("EVP_CipherInit_ex"));
        }
        Ok(ctx)
    }

    /// Re-keys the context of `dir` (only its nonce when it holds `key` already) and
    /// feeds the associated data.
    fn start(&mut self, dir: Dir, key: &Key, nonce: &[u8; NONCE_BYTES], aad: &[u8]) -> Result<(), CryptoError> {
        let (ctx, held) = match dir {
            Dir::Seal => (self.seal_ctx, &mut self.seal_key),
            Dir::Open => (self.open_ctx, &mut self.open_key),
        };
        let same = held.as_ref().is_some_and(|k| k.bytes() == key.bytes());
        let key_ptr = if same { ptr::null() } else { key.bytes().as_ptr() };
        // SAFETY: ctx is one of our live contexts, already set to this cipher and, when
        // key_ptr is null, to this key; key_ptr (unless null) and nonce point to 32 and 12
        // readable bytes, as the cipher needs.
        let ok = unsafe { (self.api.init)(ctx, ptr::null(), ptr::null_mut(), key_ptr, nonce.as_ptr(), -1) };
        if ok != 1 {
            *held = None;
            return Err(CryptoError::Failed("EVP_CipherInit_ex"));
        }
        if !same {
            *held = Some(Key::from_bytes(*key.bytes()));
        }
        if !aad.is_empty() {
            let mut outl = 0;
            let n = len_c(aad.len(), "EVP_CipherUpdate (associated data too long)")?;
            // SAFETY: a null output makes this call take `aad` as associated
            // data; aad points to n readable bytes.
            if unsafe { (self.api.update)(ctx, ptr::null_mut(), &mut outl, aad.as_ptr(), n) } != 1 {
                return Err(CryptoError::Failed("EVP_CipherUpdate"));
            }
        }
        Ok(())
    }

    /// Runs the cipher over `len` bytes from `input` to `output`, which are
    /// either the same buffer or disjoint buffers of at least `len` bytes.
    ///
    /// # Safety
    /// `input` must be readable and `output` writable for `len` bytes, and
    /// they must be equal or not overlap.
    unsafe fn crypt(
        &self,
        ctx: *mut EvpCipherCtx,
        input: *const u8,
        output: *mut u8,
        len: usize,
    ) -> Result<(), CryptoError> {
        if len == 0 {
            return Ok(());
        }
        let n = len_c(len, "EVP_CipherUpdate (message too long)")?;
        let mut outl = 0;
        // SAFETY: guaranteed by the caller; OpenSSL allows in-place operation.
        if unsafe { (self.api.update)(ctx, output, &mut outl, input, n) } != 1 || outl != n {
            return Err(CryptoError::Failed("EVP_CipherUpdate"));
        }
        Ok(())
    }

    /// Encrypts `buf` in place and returns the 16-byte tag.
    pub fn seal_in_place(
        &mut self,
        key: &Key,
        nonce: &[u8; NONCE_BYTES],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_BYTES], CryptoError> {
        let ctx = self.seal_ctx;
        self.start(Dir::Seal, key, nonce, aad)?;
        let p = buf.as_mut_ptr();
        // SAFETY: in place over buf, which is valid for buf.len() bytes.
        unsafe { self.crypt(ctx, p, p, buf.len())? };
        let mut tail = [0u8; 16];
        let mut outl = 0;
        let mut tag = [0u8; TAG_BYTES];
        // SAFETY: a stream cipher writes nothing at final (tail has room anyway);
        // tag has room for the TAG_BYTES the control call writes.
        let ok = unsafe {
            (self.api.finish)(ctx, tail.as_mut_ptr(), &mut outl) == 1
                && (self.api.ctx_ctrl)(ctx, CTRL_AEAD_GET_TAG, TAG_BYTES as c_int, tag.as_mut_ptr().cast()) == 1
        };
        if !ok {
            return Err(CryptoError::Failed("EVP_CipherFinal_ex"));
        }
        Ok(tag)
    }

    /// Decrypts and verifies `len` bytes from `input` into `output`, after
    /// [`Aead::start`] re-keyed the opening context.
    ///
    /// # Safety
    /// As for [`Aead::crypt`].
    unsafe fn open_raw(
        &mut self,
        input: *const u8,
        output: *mut u8,
        len: usize,
        tag: &[u8; TAG_BYTES],
    ) -> Result<(), CryptoError> {
        let ctx = self.open_ctx;
        // SAFETY: OpenSSL only reads the 16 tag bytes despite the mutable pointer type.
        if unsafe { (self.api.ctx_ctrl)(ctx, CTRL_AEAD_SET_TAG, TAG_BYTES as c_int, tag.as_ptr() as *mut _) } != 1 {
            return Err(CryptoError::Failed("EVP_CIPHER_CTX_ctrl"));
        }
        // SAFETY: forwarded from the caller.
        unsafe { self.crypt(ctx, input, output, len)? };
        let mut tail = [0u8; 16];
        let mut outl = 0;
        // SAFETY: live context; tail has room for anything final could write.
        if unsafe { (self.api.finish)(ctx, tail.as_mut_ptr(), &mut outl) } != 1 {
            return Err(CryptoError::Forged);
        }
        Ok(())
    }

    /// Verifies and decrypts `buf` in place. On failure `buf` is zeroed, so
    /// unauthenticated plaintext is never left behind.
    pub fn open_in_place(
        &mut self,
        key: &Key,
        nonce: &[u8; NONCE_BYTES],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_BYTES],
    ) -> Result<(), CryptoError> {
        self.start(Dir::Open, key, nonce, aad)?;
        let p = buf.as_mut_ptr();
        // SAFETY: in place over buf, valid for buf.len() bytes.
        let r = unsafe { self.open_raw(p, p, buf.len(), tag) };
        if r.is_err() {
            wipe(buf);
        }
        r
    }

    /// Verifies and decrypts `ciphertext` into `out[..ciphertext.len()]`. On
    /// failure that part of `out` is zeroed.
    pub fn open(
        &mut self,
        key: &Key,
        nonce: &[u8; NONCE_BYTES],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8; TAG_BYTES],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        let Some(out) = out.get_mut(..ciphertext.len()) else {
            return Err(CryptoError::Failed("open: output buffer shorter than the ciphertext"));
        };
        self.start(Dir::Open, key, nonce, aad)?;
        // SAFETY: `out` is an exclusive borrow, so it cannot overlap the
        // shared borrow `ciphertext`; both are valid for ciphertext.len() bytes.
        let r = unsafe { self.open_raw(ciphertext.as_ptr(), out.as_mut_ptr(), ciphertext.len(), tag) };
        if r.is_err() {
            wipe(out);
        }
        r
    }

    /// XChaCha20-Poly1305: the IETF AEAD under `HChaCha20(key, nonce[..16])`
    /// with nonce `00000000 || nonce[16..24]`. Encrypts `buf` in place.
    pub fn xseal_in_place(
        &mut self,
        key: &Key,
        nonce: &[u8; XNONCE_BYTES],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_BYTES], CryptoError> {
        let (subkey, n) = xsplit(key, nonce);
        self.seal_in_place(&subkey, &n, aad, buf)
    }

    /// XChaCha20-Poly1305 decryption in place; `buf` is zeroed on failure.
    pub fn xopen_in_place(
        &mut self,
        key: &Key,
        nonce: &[u8; XNONCE_BYTES],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_BYTES],
    ) -> Result<(), CryptoError> {
        let (subkey, n) = xsplit(key, nonce);
        self.open_in_place(&subkey, &n, aad, buf, tag)
    }
}

fn xsplit(key: &Key, nonce: &[u8; XNONCE_BYTES]) -> (Key, [u8; NONCE_BYTES]) {
    let mut head = [0u8; 16];
    head.copy_from_slice(&nonce[..16]);
    let subkey = hchacha20(key.bytes(), &head);
    let mut n = [0u8; NONCE_BYTES];
    n[4..].copy_from_slice(&nonce[16..]);
    (subkey, n)
}

impl Drop for Aead {
    fn drop(&mut self) {
        for ctx in [self.seal_ctx, self.open_ctx] {
            if !ctx.is_null() {
                // SAFETY: ctx came from EVP_CIPHER_CTX_new and is freed once, here.
                unsafe { (self.api.ctx_free)(ctx) };
            }
        }
    }
}

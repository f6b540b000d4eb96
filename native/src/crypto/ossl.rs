//! OpenSSL's libcrypto, reached through symbols the process already has.
//!
//! Node links OpenSSL statically and exports its symbols to addons, so the
//! addon looks them up at run time with `dlsym(RTLD_DEFAULT, …)` on first use
//! instead of linking libcrypto: a Node built without them gives a clear error
//! naming the missing symbol rather than a failed `dlopen` of the addon. The
//! table is resolved once and cached for the life of the process.
//!
//! `cargo test` runs without Node, so test builds resolve the same names in
//! the system's `libcrypto.so.3` instead; the production path is `RTLD_DEFAULT`
//! only.

use std::ffi::{c_int, c_void, CStr};
use std::sync::OnceLock;

use super::CryptoError;

/// Opaque `EVP_CIPHER_CTX`.
#[repr(C)]
pub(crate) struct EvpCipherCtx {
    _private: [u8; 0],
}

/// Opaque `EVP_CIPHER`.
#[repr(C)]
pub(crate) struct EvpCipher {
    _private: [u8; 0],
}

/// `EVP_CTRL_AEAD_SET_IVLEN`.
pub(crate) const CTRL_AEAD_SET_IVLEN: c_int = 0x9;
/// `EVP_CTRL_AEAD_GET_TAG`.
pub(crate) const CTRL_AEAD_GET_TAG: c_int = 0x10;
/// `EVP_CTRL_AEAD_SET_TAG`.
pub(crate) const CTRL_AEAD_SET_TAG: c_int = 0x11;

/// `const EVP_CIPHER *EVP_chacha20_poly1305(void)`
type CipherFn = unsafe extern "C" fn() -> *const EvpCipher;
/// `EVP_CIPHER_CTX *EVP_CIPHER_CTX_new(void)`
type CtxNewFn = unsafe extern "C" fn() -> *mut EvpCipherCtx;
/// `void EVP_CIPHER_CTX_free(EVP_CIPHER_CTX *)`
type CtxFreeFn = unsafe extern "C" fn(*mut EvpCipherCtx);
/// `int EVP_CIPHER_CTX_ctrl(EVP_CIPHER_CTX *, int type, int arg, void *ptr)`
type CtrlFn = unsafe extern "C" fn(*mut EvpCipherCtx, c_int, c_int, *mut c_void) -> c_int;
/// `int EVP_CipherInit_ex(ctx, const EVP_CIPHER *, ENGINE *, key, iv, int enc)`
type InitFn =
    unsafe extern "C" fn(*mut EvpCipherCtx, *const EvpCipher, *mut c_void, *const u8, *const u8, c_int) -> c_int;
/// `int EVP_CipherUpdate(ctx, out, int *outl, in, int inl)`
type UpdateFn = unsafe extern "C" fn(*mut EvpCipherCtx, *mut u8, *mut c_int, *const u8, c_int) -> c_int;
/// `int EVP_CipherFinal_ex(ctx, out, int *outl)`
type FinalFn = unsafe extern "C" fn(*mut EvpCipherCtx, *mut u8, *mut c_int) -> c_int;

/// The libcrypto functions tsage calls, as resolved function pointers.
pub(crate) struct Ossl {
    pub chacha20_poly1305: CipherFn,
    pub ctx_new: CtxNewFn,
    pub ctx_free: CtxFreeFn,
    pub ctx_ctrl: CtrlFn,
    pub init: InitFn,
    pub update: UpdateFn,
    pub finish: FinalFn,
}

/// Every symbol [`Ossl`] needs, in the order they are resolved.
pub(crate) const SYMBOLS: [&CStr; 7] = [
    c"EVP_chacha20_poly1305",
    c"EVP_CIPHER_CTX_new",
    c"EVP_CIPHER_CTX_free",
    c"EVP_CIPHER_CTX_ctrl",
    c"EVP_CipherInit_ex",
    c"EVP_CipherUpdate",
    c"EVP_CipherFinal_ex",
];

impl Ossl {
    /// Resolves every symbol with `resolve`, which returns null for a name it
    /// does not know; the first missing one is reported by name.
    ///
    /// # Safety
    /// Each non-null pointer `resolve` returns for a name in [`SYMBOLS`] must be
    /// that libcrypto function, with the C signature documented on its field.
    pub(crate) unsafe fn load(resolve: impl Fn(&CStr) -> *mut c_void) -> Result<Ossl, CryptoError> {
        let mut ptrs = [std::ptr::null_mut::<c_void>(); SYMBOLS.len()];
        for (p, name) in ptrs.iter_mut().zip(SYMBOLS) {
            *p = resolve(name);
            if p.is_null() {
                return Err(CryptoError::MissingSymbol(name.to_str().unwrap_or("?")));
            }
        }
        // SAFETY: (all seven) the caller guarantees each pointer is the named
        // libcrypto function, whose C signature is the field's type.
        unsafe {
            Ok(Ossl {
                chacha20_poly1305: std::mem::transmute::<*mut c_void, CipherFn>(ptrs[0]),
                ctx_new: std::mem::transmute::<*mut c_void, CtxNewFn>(ptrs[1]),
                ctx_free: std::mem::transmute::<*mut c_void, CtxFreeFn>(ptrs[2]),
                ctx_ctrl: std::mem::transmute::<*mut c_void, CtrlFn>(ptrs[3]),
                init: std::mem::transmute::<*mut c_void, InitFn>(ptrs[4]),
                update: std::mem::transmute::<*mut c_void, UpdateFn>(ptrs[5]),
                finish: std::mem::transmute::<*mut c_void, FinalFn>(ptrs[6]),
            })
        }
    }
}

#[cfg(unix)]
extern "C" {
    fn dlsym(handle: *mut c_void, symbol: *const std::ffi::c_char) -> *mut c_void;
    #[cfg(test)]
    fn dlopen(filename: *const std::ffi::c_char, flags: c_int) -> *mut c_void;
}

/// `RTLD_DEFAULT`: search the global scope (Node and what it loaded). It is 0 on
/// glibc and musl, -2 on macOS and the BSDs.
#[cfg(all(unix, not(test)))]
const RTLD_DEFAULT: *mut c_void = if cfg!(any(target_os = "linux", target_os = "android")) {
    std::ptr::null_mut()
} else {
    -2isize as *mut c_void
};

/// Off Unix there is no `dlsym`: Node's OpenSSL cannot be reached yet (Windows
/// would need `GetProcAddress` on the Node executable).
#[cfg(all(not(unix), not(test)))]
fn resolve_all() -> Result<Ossl, CryptoError> {
    // SAFETY: the resolver finds nothing, so load reports the first name as missing
    // and calls no function.
    unsafe { Ossl::load(|_| std::ptr::null_mut()) }
}

#[cfg(all(unix, not(test)))]
fn resolve_all() -> Result<Ossl, CryptoError> {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name has no other
    // precondition; the names are libcrypto's own exported functions, so what
    // it returns for them is those functions.
    unsafe { Ossl::load(|name| dlsym(RTLD_DEFAULT, name.as_ptr())) }
}

/// A symbol of the system's `libcrypto.so.3`, or null (test builds only).
#[cfg(test)]
pub(crate) fn libcrypto_symbol(name: &CStr) -> *mut c_void {
    const RTLD_NOW: c_int = 2;
    // SAFETY: dlopen takes a NUL-terminated file name; reopening a loaded
    // library returns the same handle, which is never closed, so symbols from
    // it stay valid for the life of the process.
    let handle = unsafe { dlopen(c"libcrypto.so.3".as_ptr(), RTLD_NOW) };
    if handle.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: handle is a live library handle and name is NUL-terminated.
    unsafe { dlsym(handle, name.as_ptr()) }
}

#[cfg(test)]
fn resolve_all() -> Result<Ossl, CryptoError> {
    if libcrypto_symbol(SYMBOLS[0]).is_null() {
        return Err(CryptoError::Unavailable(
            "libcrypto.so.3 (test builds load the system OpenSSL)",
        ));
    }
    // SAFETY: the names are libcrypto's functions, looked up in libcrypto.
    unsafe { Ossl::load(libcrypto_symbol) }
}

static OSSL: OnceLock<Result<Ossl, CryptoError>> = OnceLock::new();

/// The resolved table, looked up on the first call and cached (errors too).
pub(crate) fn ossl() -> Result<&'static Ossl, CryptoError> {
    OSSL.get_or_init(resolve_all).as_ref().map_err(Clone::clone)
}

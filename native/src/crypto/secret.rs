//! Secrets that wipe themselves, and random bytes from the kernel.

use std::fmt;
use std::sync::atomic::{compiler_fence, Ordering};

use super::CryptoError;

/// Overwrites `buf` with zeros in a way the optimiser may not remove.
pub fn wipe(buf: &mut [u8]) {
    for b in buf.iter_mut() {
        // SAFETY: b is a valid, aligned, exclusive reference to one byte.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
    compiler_fence(Ordering::SeqCst);
}

/// `N` secret bytes (a key, a decrypted token, user data) that are zeroed
/// when dropped and never printed.
#[derive(Clone, PartialEq, Eq)]
#[repr(transparent)]
pub struct Secret<const N: usize>([u8; N]);

/// A 32-byte key (ChaCha20-Poly1305, the connect-token private key, packet keys).
pub type Key = Secret<32>;

impl<const N: usize> Secret<N> {
    /// All zeros.
    pub fn zero() -> Self {
        Secret([0; N])
    }

    /// Takes ownership of `bytes` (the caller should wipe any copy it keeps).
    pub fn from_bytes(bytes: [u8; N]) -> Self {
        Secret(bytes)
    }

    /// Copies exactly `N` bytes from `bytes`, or `None` if the length differs.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != N {
            return None;
        }
        let mut s = Self::zero();
        s.0.copy_from_slice(bytes);
        Some(s)
    }

    /// `N` bytes from the kernel's CSPRNG.
    pub fn random() -> Result<Self, CryptoError> {
        let mut s = Self::zero();
        fill_random(&mut s.0)?;
        Ok(s)
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8; N] {
        &self.0
    }

    /// The bytes, for writing in place.
    pub fn bytes_mut(&mut self) -> &mut [u8; N] {
        &mut self.0
    }
}

impl<const N: usize> Drop for Secret<N> {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

impl<const N: usize> fmt::Debug for Secret<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret<{N}>(..)")
    }
}

#[cfg(all(target_os = "linux", not(tsage_portable)))]
extern "C" {
    fn getrandom(buf: *mut std::ffi::c_void, buflen: usize, flags: u32) -> isize;
}

/// One call into the kernel's CSPRNG: Linux's `getrandom(2)`, which blocks
/// only until the pool is first seeded. Returns the bytes written, or -1 (errno set).
#[cfg(all(target_os = "linux", not(tsage_portable)))]
fn os_random(buf: &mut [u8]) -> isize {
    // SAFETY: the pointer and length describe `buf`, writable and in bounds.
    unsafe { getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) }
}

#[cfg(all(unix, not(all(target_os = "linux", not(tsage_portable)))))]
extern "C" {
    fn getentropy(buf: *mut std::ffi::c_void, buflen: usize) -> std::ffi::c_int;
}

/// Elsewhere on Unix (macOS, the BSDs; and Linux under `--cfg tsage_portable`):
/// `getentropy(3)`, at most 256 bytes a call. Returns the bytes written, or -1.
#[cfg(all(unix, not(all(target_os = "linux", not(tsage_portable)))))]
fn os_random(buf: &mut [u8]) -> isize {
    let n = buf.len().min(256);
    // SAFETY: the pointer and length describe the first n bytes of `buf`, writable.
    if unsafe { getentropy(buf.as_mut_ptr().cast(), n) } == 0 {
        n as isize
    } else {
        -1
    }
}

/// Off Unix, no CSPRNG is declared yet: every call fails (errno 0).
#[cfg(not(unix))]
fn os_random(_buf: &mut [u8]) -> isize {
    -1
}

/// Fills `buf` from the kernel's CSPRNG (`getrandom(2)` on Linux, `getentropy(3)`
/// on other Unix systems). Retries on `EINTR` and short reads.
pub fn fill_random(buf: &mut [u8]) -> Result<(), CryptoError> {
    let mut done = 0;
    while done < buf.len() {
        let n = os_random(&mut buf[done..]);
        if n > 0 {
            done += n as usize;
            continue;
        }
        let err = std::io::Error::last_os_error();
        if n < 0 && err.kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        return Err(CryptoError::Random(err.raw_os_error().unwrap_or(0)));
    }
    Ok(())
}

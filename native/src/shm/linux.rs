//! Linux's calls behind [`super::Region`]: `memfd_create`, `fstat`, `mmap`, `munmap`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::ptr::NonNull;

use super::RawFd;

/// An owned descriptor: closed when dropped.
pub type Fd = OwnedFd;

const MFD_CLOEXEC: u32 = 0x0001;
const PROT_READ: i32 = 0x1;
const PROT_WRITE: i32 = 0x2;
const MAP_SHARED: i32 = 0x01;
const MAP_FAILED: *mut u8 = !0usize as *mut u8;

extern "C" {
    fn memfd_create(name: *const u8, flags: u32) -> i32;
    fn mmap(addr: *mut u8, len: usize, prot: i32, flags: i32, fd: i32, off: i64) -> *mut u8;
    fn munmap(addr: *mut u8, len: usize) -> i32;
    fn fstat(fd: i32, buf: *mut u8) -> i32;
}

/// A new close-on-exec memfd of `len` zero bytes.
pub fn create(len: usize) -> io::Result<Fd> {
    // SAFETY: the name is a NUL-terminated literal; memfd_create reads it only.
    let raw = unsafe { memfd_create(c"tsage".as_ptr().cast(), MFD_CLOEXEC) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: memfd_create just returned this descriptor and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let file = std::fs::File::from(fd);
    file.set_len(len as u64)?;
    Ok(OwnedFd::from(file))
}

/// The descriptor's number (it stays owned).
pub fn raw(fd: &Fd) -> RawFd {
    fd.as_raw_fd()
}

/// Gives up ownership: the number is the caller's to close.
pub fn into_raw(fd: Fd) -> RawFd {
    fd.into_raw_fd()
}

/// # Safety
/// The caller owns `fd` and nothing uses it afterwards.
pub unsafe fn close(fd: RawFd) {
    // SAFETY: the caller owns fd and gives it up.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
}

/// Size in bytes of the file behind `fd`.
pub fn size(fd: RawFd) -> io::Result<u64> {
    // struct stat is 144 bytes on x86_64 and 128 on aarch64 Linux; st_size is at 48 on both.
    let mut buf = [0u8; 256];
    // SAFETY: buf is larger than struct stat on every Linux target we build for.
    if unsafe { fstat(fd, buf.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let size = i64::from_ne_bytes(buf[48..56].try_into().expect("8 bytes"));
    Ok(size.max(0) as u64)
}

/// # Safety
/// `fd` must be open and refer to a file of at least `len` bytes.
pub unsafe fn map(fd: RawFd, len: usize) -> io::Result<NonNull<u8>> {
    // SAFETY: a fresh shared mapping at an address the kernel chooses; the
    // caller guarantees fd is open and long enough.
    let p = unsafe { mmap(std::ptr::null_mut(), len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) };
    if p == MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(p).ok_or_else(|| io::Error::other("mmap returned null"))
}

/// # Safety
/// `ptr`/`len` describe a mapping made by [`map`] that nothing uses any more.
pub unsafe fn unmap(ptr: NonNull<u8>, len: usize) {
    // SAFETY: the caller's contract.
    unsafe { munmap(ptr.as_ptr(), len) };
}

//! Where there is no `memfd_create` (every target but Linux): no region can be
//! made or mapped, so process groups report that they need Linux.

use std::io;
use std::ptr::NonNull;

use super::RawFd;

/// No descriptor can exist here: a [`super::Region`] is never made.
#[derive(Debug)]
pub enum Fd {}

fn unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "shared-memory regions (process groups) need Linux (memfd_create)",
    )
}

/// Always fails: see the module's doc.
pub fn create(_len: usize) -> io::Result<Fd> {
    Err(unsupported())
}

/// Unreachable: no [`Fd`] exists.
pub fn raw(fd: &Fd) -> RawFd {
    match *fd {}
}

/// Unreachable: no [`Fd`] exists.
pub fn into_raw(fd: Fd) -> RawFd {
    match fd {}
}

/// Does nothing: no descriptor was ever handed out here.
///
/// # Safety
/// None needed; the signature matches the Linux one.
pub unsafe fn close(_fd: RawFd) {}

/// Always fails: see the module's doc.
pub fn size(_fd: RawFd) -> io::Result<u64> {
    Err(unsupported())
}

/// Always fails: see the module's doc.
///
/// # Safety
/// None needed; the signature matches the Linux one.
pub unsafe fn map(_fd: RawFd, _len: usize) -> io::Result<NonNull<u8>> {
    Err(unsupported())
}

/// Unreachable: no mapping is ever made here.
///
/// # Safety
/// None needed; the signature matches the Linux one.
pub unsafe fn unmap(_ptr: NonNull<u8>, _len: usize) {}

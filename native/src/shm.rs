//! Anonymous shared memory: regions made with `memfd_create` and mapped with `mmap`.
//!
//! A region has no name in any file system (nothing appears under `/dev/shm`).
//! Another process gets at it through its file descriptor, inherited across
//! `spawn`, and maps it again with [`Region::map`]. The kernel frees the memory
//! when the last descriptor is closed and the last mapping is gone.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;

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

/// The largest region this module will create or map (1 TiB): far above any
/// ring, low enough that a garbled length cannot ask for the address space.
pub const MAX_REGION_LEN: usize = 1 << 40;

/// A mapping of shared memory. Unmapped on drop; the descriptor, if this
/// mapping owns one, is closed separately (see [`Region::take_fd`]).
#[derive(Debug)]
pub struct Region {
    ptr: NonNull<u8>,
    len: usize,
    fd: Option<OwnedFd>,
}

// SAFETY: a Region is a pointer to a shared mapping; moving it between threads
// moves only the right to unmap it, which munmap allows from any thread.
unsafe impl Send for Region {}

impl Region {
    /// Creates a zero-filled region of `len` bytes backed by a new memfd and maps it.
    /// The descriptor is close-on-exec: pass it to a child explicitly
    /// (Node's `spawn` `stdio` slots do that).
    pub fn create(len: usize) -> io::Result<Region> {
        check_len(len)?;
        // SAFETY: the name is a NUL-terminated literal; memfd_create reads it only.
        let raw = unsafe { memfd_create(c"tsage".as_ptr().cast(), MFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: memfd_create just returned this descriptor and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let file = std::fs::File::from(fd);
        file.set_len(len as u64)?;
        let fd = OwnedFd::from(file);
        // SAFETY: fd is a fresh memfd sized to len; nothing else maps it yet.
        let ptr = unsafe { map_fd(fd.as_raw_fd(), len)? };
        Ok(Region { ptr, len, fd: Some(fd) })
    }

    /// Maps `len` bytes of an existing shared-memory descriptor, such as one
    /// inherited from the process that created the region. The descriptor is
    /// not taken over: the caller may close it once this returns.
    ///
    /// # Safety
    /// Another process may write to the mapping at any time. The caller must
    /// treat the memory as shared: read and write it only through atomics or
    /// through a protocol (such as [`crate::ring`]) that orders the accesses,
    /// and never form a `&`/`&mut` reference to bytes another process writes.
    pub unsafe fn map(fd: RawFd, len: usize) -> io::Result<Region> {
        check_len(len)?;
        let size = fd_size(fd)?;
        if (size as u128) < len as u128 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("shared memory descriptor {fd} holds {size} bytes, fewer than the {len} asked for"),
            ));
        }
        // SAFETY: fd refers to a file at least len bytes long (checked above);
        // the caller accepts the shared-memory contract stated in # Safety.
        let ptr = unsafe { map_fd(fd, len)? };
        Ok(Region { ptr, len, fd: None })
    }

    /// Start of the mapping.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a region has at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The descriptor this mapping was created with, if it still owns one.
    pub fn raw_fd(&self) -> Option<RawFd> {
        self.fd.as_ref().map(|f| f.as_raw_fd())
    }

    /// Takes ownership of the descriptor out of the region (the mapping stays).
    pub fn take_fd(&mut self) -> Option<OwnedFd> {
        self.fd.take()
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: ptr/len describe a mapping this Region made and still owns.
        unsafe { munmap(self.ptr.as_ptr(), self.len) };
    }
}

fn check_len(len: usize) -> io::Result<()> {
    if len == 0 || len > MAX_REGION_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("shared memory length must be 1..={MAX_REGION_LEN} bytes, got {len}"),
        ));
    }
    Ok(())
}

/// Size in bytes of the file behind `fd`.
fn fd_size(fd: RawFd) -> io::Result<u64> {
    // struct stat is 144 bytes on x86_64 and aarch64 Linux; st_size is at 48.
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
unsafe fn map_fd(fd: RawFd, len: usize) -> io::Result<NonNull<u8>> {
    // SAFETY: a fresh shared mapping at an address the kernel chooses; the
    // caller guarantees fd is open and long enough.
    let p = unsafe { mmap(std::ptr::null_mut(), len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) };
    if p == MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(p).ok_or_else(|| io::Error::other("mmap returned null"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_create_zeroed_region_of_requested_length() {
        let r = Region::create(4096).unwrap();
        assert_eq!(r.len(), 4096);
        assert!(r.raw_fd().is_some());
        // SAFETY: the region is ours alone and 4096 bytes long.
        let bytes = unsafe { std::slice::from_raw_parts(r.as_ptr(), 4096) };
        assert!(bytes.iter().all(|&b| b == 0));
    }

    #[test]
    fn should_see_writes_through_a_second_mapping_of_the_same_fd() {
        let a = Region::create(8192).unwrap();
        // SAFETY: both mappings are used from this thread only, one at a time.
        let b = unsafe { Region::map(a.raw_fd().unwrap(), 8192) }.unwrap();
        // SAFETY: offset 100 is inside both 8192-byte mappings.
        unsafe {
            a.as_ptr().add(100).write_volatile(42);
            assert_eq!(b.as_ptr().add(100).read_volatile(), 42);
        }
    }

    #[test]
    fn should_refuse_zero_length_and_mapping_past_the_end() {
        assert!(Region::create(0).is_err());
        let a = Region::create(4096).unwrap();
        // SAFETY: the call fails before mapping anything.
        let r = unsafe { Region::map(a.raw_fd().unwrap(), 8192) };
        assert!(r.is_err());
    }

    #[test]
    fn should_refuse_a_closed_descriptor() {
        // SAFETY: the call fails in fstat before mapping anything.
        let r = unsafe { Region::map(987_654, 4096) };
        assert!(r.is_err());
    }
}

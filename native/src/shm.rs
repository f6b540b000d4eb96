//! Anonymous shared memory: regions made with `memfd_create` and mapped with `mmap`.
//!
//! A region has no name in any file system (nothing appears under `/dev/shm`).
//! Another process gets at it through its file descriptor, inherited across
//! `spawn`, and maps it again with [`Region::map`]. The kernel frees the memory
//! when the last descriptor is closed and the last mapping is gone.
//!
//! The system calls are Linux's (`sys`, from `shm/linux.rs`). Other targets, and
//! a Linux build with `--cfg tsage_portable`, get `shm/unsupported.rs`, whose
//! calls fail with [`io::ErrorKind::Unsupported`]: process groups need Linux,
//! and nothing else in tsage uses shared memory.

use std::io;
use std::ptr::NonNull;

#[cfg(all(target_os = "linux", not(tsage_portable)))]
#[path = "shm/linux.rs"]
mod sys;
#[cfg(not(all(target_os = "linux", not(tsage_portable))))]
#[path = "shm/unsupported.rs"]
mod sys;

/// A descriptor number, as JavaScript and a child process see it.
pub type RawFd = i32;

/// The largest region this module will create or map (1 TiB): far above any
/// ring, low enough that a garbled length cannot ask for the address space.
pub const MAX_REGION_LEN: usize = 1 << 40;

/// A mapping of shared memory. Unmapped on drop; the descriptor, if this
/// mapping owns one, is closed separately (see [`Region::take_fd`]).
#[derive(Debug)]
pub struct Region {
    ptr: NonNull<u8>,
    len: usize,
    fd: Option<sys::Fd>,
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
        let fd = sys::create(len)?;
        // SAFETY: fd is a fresh region sized to len; nothing else maps it yet.
        let ptr = unsafe { sys::map(sys::raw(&fd), len)? };
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
        let size = sys::size(fd)?;
        if (size as u128) < len as u128 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("shared memory descriptor {fd} holds {size} bytes, fewer than the {len} asked for"),
            ));
        }
        // SAFETY: fd refers to a file at least len bytes long (checked above);
        // the caller accepts the shared-memory contract stated in # Safety.
        let ptr = unsafe { sys::map(fd, len)? };
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
        self.fd.as_ref().map(sys::raw)
    }

    /// Takes the descriptor out of the region (the mapping stays): the caller
    /// now owns it and closes it with [`close_fd`].
    pub fn take_fd(&mut self) -> Option<RawFd> {
        self.fd.take().map(sys::into_raw)
    }
}

/// Closes a descriptor from [`Region::take_fd`] or inherited from a parent.
///
/// # Safety
/// The caller owns `fd` and gives it up: nothing else may use or close it afterwards.
pub unsafe fn close_fd(fd: RawFd) {
    // SAFETY: the caller's contract is sys::close's.
    unsafe { sys::close(fd) }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: ptr/len describe a mapping this Region made and still owns.
        unsafe { sys::unmap(self.ptr, self.len) };
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

#[cfg(all(test, tsage_portable))]
mod portable_tests {
    use super::*;

    #[test]
    fn should_say_regions_need_linux() {
        let e = Region::create(4096).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
        assert!(e.to_string().contains("need Linux"), "{e}");
        // SAFETY: the call fails before mapping anything.
        let e = unsafe { Region::map(3, 4096) }.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
    }
}

#[cfg(all(test, not(tsage_portable)))]
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

//! Exports for anonymous shared memory ([`crate::shm`]).
//!
//! Each mapping goes to JavaScript as an external ArrayBuffer, which JavaScript
//! cannot detach (Node copies such a buffer rather than transfer it), so its
//! memory stays put until the buffer is collected. The addon keeps a list of
//! its live mappings ([`is_mapping`]) so that the ring calls know a region is
//! one of them and need not check on every call that it is still attached.

use std::cell::RefCell;

use super::sys::napi_value;
use super::{arg, Env, JsError, Result};
use crate::shm::{close_fd as close, Region, MAX_REGION_LEN};

thread_local! {
    /// `(start, end)` of every mapping handed to JavaScript and not yet collected.
    static MAPPINGS: RefCell<Vec<(usize, usize)>> = const { RefCell::new(Vec::new()) };
}

/// A mapping JavaScript holds: listed in [`MAPPINGS`] until its ArrayBuffer is collected.
struct Mapped(Region);

impl Mapped {
    fn new(region: Region) -> Box<Self> {
        let start = region.as_ptr() as usize;
        MAPPINGS.with(|m| m.borrow_mut().push((start, start + region.len())));
        Box::new(Mapped(region))
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        let start = self.0.as_ptr() as usize;
        let range = (start, start + self.0.len());
        MAPPINGS.with(|m| {
            let mut m = m.borrow_mut();
            if let Some(i) = m.iter().position(|&r| r == range) {
                m.swap_remove(i);
            }
        });
    }
}

/// Whether `range` is exactly one of the live mappings this addon handed to JavaScript.
pub fn is_mapping(range: (usize, usize)) -> bool {
    MAPPINGS.with(|m| m.borrow().contains(&range))
}

/// `shmCreate(len) -> { buffer: ArrayBuffer, fd: number }`: a new region
/// mapped as an external ArrayBuffer (unmapped when it is collected) and its
/// descriptor, which JavaScript now owns and must `closeFd` when done.
pub fn create(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let len = env.get_uint(arg(args, 0, "len")?, "len", MAX_REGION_LEN as f64)? as usize;
    if len == 0 {
        return Err(JsError::arg("len must be at least 1 byte"));
    }
    let mut region = Region::create(len).map_err(|e| JsError::io("memfd_create/mmap", e))?;
    let fd = region.take_fd().expect("a new region owns its fd");
    let ptr = region.as_ptr();
    let obj = env.object()?;
    let buffer = match env.external_arraybuffer(ptr, len, Mapped::new(region)) {
        Ok(b) => b,
        Err(e) => {
            // SAFETY: fd was just taken out of the region and nothing else owns it.
            unsafe { close(fd) };
            return Err(e);
        }
    };
    env.set(obj, "buffer", buffer)?;
    env.set(obj, "fd", env.double(fd as f64)?)?;
    Ok(obj)
}

/// `shmMap(fd, len) -> ArrayBuffer`: maps a region another process created
/// (its descriptor inherited). The descriptor stays open; close it with `closeFd`.
pub fn map(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let fd = env.get_uint(arg(args, 0, "fd")?, "fd", i32::MAX as f64)? as i32;
    let len = env.get_uint(arg(args, 1, "len")?, "len", MAX_REGION_LEN as f64)? as usize;
    if len == 0 {
        return Err(JsError::arg("len must be at least 1 byte"));
    }
    // SAFETY: no Rust reference to this memory is ever formed, as Region::map
    // requires: it goes to JavaScript as an external ArrayBuffer, whose plain
    // typed-array loads and stores are defined even while another process
    // writes the same bytes (a racing read may see a mix of old and new bytes,
    // which the ring protocol and its readers' checks must and do allow for),
    // and native code reaches it only through `ring`, with atomics and raw copies.
    let region = unsafe { Region::map(fd, len) }.map_err(|e| JsError::io("mmap", e))?;
    let ptr = region.as_ptr();
    env.external_arraybuffer(ptr, len, Mapped::new(region))
}

/// `closeFd(fd)`: closes a descriptor returned by `shmCreate` or inherited.
pub fn close_fd(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let fd = env.get_uint(arg(args, 0, "fd")?, "fd", i32::MAX as f64)? as i32;
    if fd <= 2 {
        return Err(JsError::arg(format!("closeFd refuses standard descriptor {fd}")));
    }
    // SAFETY: JavaScript owns this descriptor (from shmCreate or inheritance) and gives it up here.
    unsafe { close(fd) };
    env.undefined()
}

//! Buffer arguments: the memory behind an `ArrayBuffer`, a `Uint8Array` or a
//! `Float64Array`, checked the way napi-rs checks it.
//!
//! Each argument must be of the exact kind the export names (a `Float32Array`
//! or a `DataView` where a `Uint8Array` is wanted is refused, never read as
//! bytes), the element size comes from that kind (never guessed), an empty
//! buffer is an empty slice (never a slice over a null pointer), and
//! [`check_disjoint`] refuses buffers that must not overlap but do.

use std::marker::PhantomData;
use std::ptr::{self, NonNull};

use super::sys::*;
use super::{check, Env, JsError, Result};

/// The memory of a buffer argument: `len` elements of `T` at `ptr`.
///
/// It stays valid while the JavaScript value is alive and its `ArrayBuffer` is
/// not detached. Both hold for the duration of the export call that received
/// the value as an argument (the argument keeps it alive, and nothing in a
/// native call runs JavaScript that could detach it); keeping a `Mem` past the
/// call is the caller's responsibility (see `napi/ring.rs`). Slices are formed
/// only over buffers that no other process writes: tsage hands shared-memory
/// regions only to the ring calls (as `region`, reached through raw pointers),
/// and private buffers everywhere else.
#[derive(Debug)]
pub struct Mem<T> {
    ptr: NonNull<T>,
    len: usize,
    _t: PhantomData<*mut T>,
}

impl<T> Clone for Mem<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Mem<T> {}

impl<T> Mem<T> {
    /// `len` elements at `data`; `data` may be null only when `len` is 0 (it is then replaced by a
    /// dangling, aligned pointer, which is what an empty slice needs).
    fn new(data: *mut T, len: usize, what: &str) -> Result<Self> {
        let ptr = match NonNull::new(data) {
            Some(p) => p,
            None if len == 0 => NonNull::dangling(),
            None => return Err(JsError::arg(format!("{what} has {len} elements but no memory"))),
        };
        if !(ptr.as_ptr() as usize).is_multiple_of(std::mem::align_of::<T>()) {
            return Err(JsError::arg(format!(
                "{what} is not aligned to {} bytes",
                std::mem::align_of::<T>()
            )));
        }
        Ok(Mem {
            ptr,
            len,
            _t: PhantomData,
        })
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Start of the memory (dangling, but aligned and non-null, when empty).
    pub fn as_ptr(&self) -> *mut T {
        self.ptr.as_ptr()
    }

    /// Byte address range `[start, end)`.
    pub fn byte_range(&self) -> (usize, usize) {
        let start = self.ptr.as_ptr() as usize;
        (start, start + self.len * std::mem::size_of::<T>())
    }

    /// Whether the two share a byte (empty buffers share none).
    pub fn overlaps<U>(&self, other: &Mem<U>) -> bool {
        let (a0, a1) = self.byte_range();
        let (b0, b1) = other.byte_range();
        a0 < a1 && b0 < b1 && a0 < b1 && b0 < a1
    }

    /// The first `n` elements (at most `len`).
    pub fn prefix(&self, n: usize) -> Mem<T> {
        Mem {
            ptr: self.ptr,
            len: n.min(self.len),
            _t: PhantomData,
        }
    }

    /// The memory as a shared slice.
    ///
    /// # Safety
    /// The memory must stay valid (see the type's documentation) and unwritten for `'a`.
    pub unsafe fn as_slice<'a>(&self) -> &'a [T] {
        // SAFETY: ptr is non-null and aligned, len elements are readable (the caller vouches
        // they stay valid and unwritten for 'a); an empty slice gets a dangling pointer.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The memory as a mutable slice.
    ///
    /// # Safety
    /// The memory must stay valid for `'a` and must not be read or written through any other
    /// path meanwhile (in particular through another `Mem` that [`Mem::overlaps`] it).
    pub unsafe fn as_mut_slice<'a>(&self) -> &'a mut [T] {
        // SAFETY: as for as_slice, and the caller vouches the access is exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

/// Refuses the call when two of the named buffers overlap.
pub fn check_disjoint(bufs: &[(&str, (usize, usize))]) -> Result<()> {
    for (i, (a, (a0, a1))) in bufs.iter().enumerate() {
        for (b, (b0, b1)) in &bufs[i + 1..] {
            if a0 < a1 && b0 < b1 && a0 < b1 && b0 < a1 {
                return Err(JsError::arg(format!("{a} and {b} must not overlap")));
            }
        }
    }
    Ok(())
}

impl Env {
    /// What a value is, for an error message ("a Float32Array", "a DataView", "a string").
    fn describe(&self, v: napi_value) -> String {
        let mut is = false;
        // SAFETY: live env and handle of this call; is is a valid out pointer.
        if unsafe { napi_is_typedarray(self.0, v, &mut is) } == NAPI_OK && is {
            let (mut kind, mut len, mut data, mut ab, mut off) = (0, 0, ptr::null_mut(), ptr::null_mut(), 0);
            // SAFETY: v is a typed array (checked); every out pointer is valid.
            let st = unsafe { napi_get_typedarray_info(self.0, v, &mut kind, &mut len, &mut data, &mut ab, &mut off) };
            let name = usize::try_from(kind).ok().and_then(|k| NAPI_TYPEDARRAY_NAMES.get(k));
            return match (st, name) {
                (NAPI_OK, Some(name)) => format!("a {name}"),
                _ => format!("a typed array of unknown kind {kind}"),
            };
        }
        // SAFETY: as above.
        if unsafe { napi_is_dataview(self.0, v, &mut is) } == NAPI_OK && is {
            return "a DataView".into();
        }
        // SAFETY: as above.
        if unsafe { napi_is_arraybuffer(self.0, v, &mut is) } == NAPI_OK && is {
            return "an ArrayBuffer".into();
        }
        let mut t = 0;
        // SAFETY: as above.
        if unsafe { napi_typeof(self.0, v, &mut t) } != NAPI_OK {
            return "an unknown value".into();
        }
        match t {
            NAPI_UNDEFINED => "undefined",
            NAPI_NULL => "null",
            NAPI_BOOLEAN => "a boolean",
            NAPI_NUMBER => "a number",
            NAPI_STRING => "a string",
            NAPI_OBJECT => "an object",
            _ => "a value of another type",
        }
        .into()
    }

    /// The memory of a typed array of exactly `kind`, or an error naming `what`.
    fn typed_array<T>(&self, v: napi_value, kind: i32, what: &str) -> Result<Mem<T>> {
        let want = NAPI_TYPEDARRAY_NAMES[kind as usize];
        let mut is = false;
        // SAFETY: live env and handle of this call; is is a valid out pointer.
        let st = unsafe { napi_is_typedarray(self.0, v, &mut is) };
        check(st, "napi_is_typedarray")?;
        if !is {
            return Err(JsError::arg(format!(
                "{what} must be a {want}, got {}",
                self.describe(v)
            )));
        }
        let (mut got, mut len, mut data, mut ab, mut off) = (0, 0, ptr::null_mut(), ptr::null_mut(), 0);
        // SAFETY: v is a typed array (checked); every out pointer is valid.
        let st = unsafe { napi_get_typedarray_info(self.0, v, &mut got, &mut len, &mut data, &mut ab, &mut off) };
        check(st, "napi_get_typedarray_info")?;
        if got != kind {
            return Err(JsError::arg(format!(
                "{what} must be a {want}, got {}",
                self.describe(v)
            )));
        }
        // `data` already points at the first element (the view's byte offset applied); `len` counts elements.
        Mem::new(data.cast(), len, what)
    }

    /// A `Uint8Array` argument (a Node `Buffer` is one).
    pub fn uint8_array(&self, v: napi_value, what: &str) -> Result<Mem<u8>> {
        self.typed_array(v, NAPI_UINT8_ARRAY, what)
    }

    /// A `Float64Array` argument of at least `min_len` elements.
    pub fn float64_array(&self, v: napi_value, what: &str, min_len: usize) -> Result<Mem<f64>> {
        let m = self.typed_array(v, NAPI_FLOAT64_ARRAY, what)?;
        if m.len() < min_len {
            return Err(JsError::arg(format!(
                "{what} must be a Float64Array of at least {min_len} elements, got {}",
                m.len()
            )));
        }
        Ok(m)
    }

    /// An `ArrayBuffer` argument (not a view of one).
    pub fn array_buffer(&self, v: napi_value, what: &str) -> Result<Mem<u8>> {
        let mut is = false;
        // SAFETY: live env and handle of this call; is is a valid out pointer.
        let st = unsafe { napi_is_arraybuffer(self.0, v, &mut is) };
        check(st, "napi_is_arraybuffer")?;
        if !is {
            return Err(JsError::arg(format!(
                "{what} must be an ArrayBuffer, got {}",
                self.describe(v)
            )));
        }
        let (mut data, mut len) = (ptr::null_mut(), 0usize);
        // SAFETY: v is an ArrayBuffer (checked); the out pointers are valid.
        let st = unsafe { napi_get_arraybuffer_info(self.0, v, &mut data, &mut len) };
        check(st, "napi_get_arraybuffer_info")?;
        Mem::new(data.cast(), len, what)
    }

    /// Where the memory of a value already known to be an ArrayBuffer is now: `(start, end)`
    /// (both 0 once detached).
    pub fn arraybuffer_memory(&self, v: napi_value) -> Result<(usize, usize)> {
        let (mut data, mut len) = (ptr::null_mut(), 0usize);
        // SAFETY: v is an ArrayBuffer (the caller checked it once; a value's type never
        // changes); the out pointers are valid.
        let st = unsafe { napi_get_arraybuffer_info(self.0, v, &mut data, &mut len) };
        check(st, "napi_get_arraybuffer_info")?;
        let start = if len == 0 { 0 } else { data as usize };
        Ok((start, start + len))
    }

    /// Where the elements of a value already known to be a typed array are now, and how many
    /// there are (0 once detached).
    pub fn typedarray_memory(&self, v: napi_value) -> Result<(usize, usize)> {
        let (mut kind, mut len, mut data, mut ab, mut off) = (0, 0, ptr::null_mut(), ptr::null_mut(), 0);
        // SAFETY: v is a typed array (the caller checked it once; a value's type never
        // changes); every out pointer is valid.
        let st = unsafe { napi_get_typedarray_info(self.0, v, &mut kind, &mut len, &mut data, &mut ab, &mut off) };
        check(st, "napi_get_typedarray_info")?;
        Ok((data as usize, len))
    }
}

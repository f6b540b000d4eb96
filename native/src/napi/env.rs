//! [`Env`]: the handful of Node-API calls the exports need, each checked and
//! turned into a `Result`. Buffer arguments are in `buf.rs`.

use std::ffi::{c_void, CString};
use std::ptr;

use super::sys::*;
use super::{check, JsError, Result};

/// The calling environment of one export invocation.
pub struct Env(pub(crate) napi_env);

impl Env {
    pub fn undefined(&self) -> Result<napi_value> {
        let mut v = ptr::null_mut();
        // SAFETY: self.0 is the live env of the current call; v is a valid out pointer.
        let st = unsafe { napi_get_undefined(self.0, &mut v) };
        check(st, "napi_get_undefined")?;
        Ok(v)
    }

    pub fn boolean(&self, b: bool) -> Result<napi_value> {
        let mut v = ptr::null_mut();
        // SAFETY: live env, valid out pointer.
        let st = unsafe { napi_get_boolean(self.0, b, &mut v) };
        check(st, "napi_get_boolean")?;
        Ok(v)
    }

    pub fn double(&self, x: f64) -> Result<napi_value> {
        let mut v = ptr::null_mut();
        // SAFETY: live env, valid out pointer.
        let st = unsafe { napi_create_double(self.0, x, &mut v) };
        check(st, "napi_create_double")?;
        Ok(v)
    }

    pub fn object(&self) -> Result<napi_value> {
        let mut v = ptr::null_mut();
        // SAFETY: live env, valid out pointer.
        let st = unsafe { napi_create_object(self.0, &mut v) };
        check(st, "napi_create_object")?;
        Ok(v)
    }

    pub fn string(&self, s: &str) -> Result<napi_value> {
        let mut v = ptr::null_mut();
        // SAFETY: s points to s.len() bytes of UTF-8 that outlive the call.
        let st = unsafe { napi_create_string_utf8(self.0, s.as_ptr().cast(), s.len(), &mut v) };
        check(st, "napi_create_string_utf8")?;
        Ok(v)
    }

    /// A new array of the given values.
    pub fn array(&self, items: &[napi_value]) -> Result<napi_value> {
        let mut a = ptr::null_mut();
        // SAFETY: live env, valid out pointer.
        let st = unsafe { napi_create_array_with_length(self.0, items.len(), &mut a) };
        check(st, "napi_create_array_with_length")?;
        for (i, &v) in items.iter().enumerate() {
            let i = u32::try_from(i).map_err(|_| JsError::arg("array too long"))?;
            // SAFETY: a and v are live handles of this call.
            let st = unsafe { napi_set_element(self.0, a, i, v) };
            check(st, "napi_set_element")?;
        }
        Ok(a)
    }

    /// Property `name` of a plain-object argument, `None` when it is `undefined`.
    pub fn get(&self, obj: napi_value, name: &str) -> Result<Option<napi_value>> {
        let cname = CString::new(name).map_err(|_| JsError::arg("property name has a NUL"))?;
        let mut v = ptr::null_mut();
        // SAFETY: obj is a live handle; cname is NUL-terminated; v is a valid out pointer.
        let st = unsafe { napi_get_named_property(self.0, obj, cname.as_ptr(), &mut v) };
        check(st, "napi_get_named_property")?;
        Ok((self.type_of(v)? != NAPI_UNDEFINED).then_some(v))
    }

    /// The own enumerable string keys of an object argument; `what` names it in errors.
    pub fn keys(&self, obj: napi_value, what: &str) -> Result<Vec<String>> {
        if self.type_of(obj)? != NAPI_OBJECT {
            return Err(JsError::arg(format!("{what} must be an object")));
        }
        let mut names = ptr::null_mut();
        // SAFETY: obj is a live object handle; names is a valid out pointer.
        let st = unsafe { napi_get_property_names(self.0, obj, &mut names) };
        check(st, "napi_get_property_names")?;
        let mut n = 0u32;
        // SAFETY: names is the array Node just returned.
        let st = unsafe { napi_get_array_length(self.0, names, &mut n) };
        check(st, "napi_get_array_length")?;
        let mut keys = Vec::with_capacity(n as usize);
        for i in 0..n {
            let mut k = ptr::null_mut();
            // SAFETY: i < the array's length; k is a valid out pointer.
            let st = unsafe { napi_get_element(self.0, names, i, &mut k) };
            check(st, "napi_get_element")?;
            keys.push(self.get_string(k, what)?);
        }
        Ok(keys)
    }

    /// A JavaScript boolean argument.
    pub fn get_bool(&self, v: napi_value, what: &str) -> Result<bool> {
        let mut b = false;
        // SAFETY: live env and handle; b is a valid out pointer.
        if unsafe { napi_get_value_bool(self.0, v, &mut b) } != NAPI_OK {
            return Err(JsError::arg(format!("{what} must be a boolean")));
        }
        Ok(b)
    }

    pub fn set(&self, obj: napi_value, name: &str, value: napi_value) -> Result<()> {
        let name = CString::new(name).map_err(|_| JsError::arg("property name has a NUL"))?;
        // SAFETY: obj and value are live handles of this call; name is NUL-terminated.
        let st = unsafe { napi_set_named_property(self.0, obj, name.as_ptr(), value) };
        check(st, "napi_set_named_property")
    }

    fn type_of(&self, v: napi_value) -> Result<napi_valuetype> {
        let mut t = 0;
        // SAFETY: live env and handle; t is a valid out pointer.
        let st = unsafe { napi_typeof(self.0, v, &mut t) };
        check(st, "napi_typeof")?;
        Ok(t)
    }

    /// Whether `v` is `undefined` or `null`.
    pub fn is_nullish(&self, v: napi_value) -> Result<bool> {
        Ok(matches!(self.type_of(v)?, NAPI_UNDEFINED | NAPI_NULL))
    }

    /// A JavaScript number argument as f64; `what` names it in the error.
    pub fn get_f64(&self, v: napi_value, what: &str) -> Result<f64> {
        let mut x = 0.0;
        // SAFETY: live env and handle; x is a valid out pointer.
        let st = unsafe { napi_get_value_double(self.0, v, &mut x) };
        if st != NAPI_OK {
            return Err(JsError::arg(format!("{what} must be a number")));
        }
        Ok(x)
    }

    /// A non-negative integer argument no larger than `max`.
    pub fn get_uint(&self, v: napi_value, what: &str, max: f64) -> Result<u64> {
        let x = self.get_f64(v, what)?;
        if !(x >= 0.0 && x <= max && x.fract() == 0.0) {
            return Err(JsError::arg(format!(
                "{what} must be an integer from 0 to {max}, got {x}"
            )));
        }
        Ok(x as u64)
    }

    /// A JavaScript string argument.
    pub fn get_string(&self, v: napi_value, what: &str) -> Result<String> {
        let mut len = 0usize;
        // SAFETY: a null buffer asks only for the length.
        let st = unsafe { napi_get_value_string_utf8(self.0, v, ptr::null_mut(), 0, &mut len) };
        if st != NAPI_OK {
            return Err(JsError::arg(format!("{what} must be a string")));
        }
        let mut buf = vec![0u8; len + 1];
        // SAFETY: buf has room for len bytes plus the NUL Node writes.
        let st = unsafe { napi_get_value_string_utf8(self.0, v, buf.as_mut_ptr().cast(), buf.len(), &mut len) };
        check(st, "napi_get_value_string_utf8")?;
        buf.truncate(len);
        String::from_utf8(buf).map_err(|_| JsError::arg(format!("{what} is not valid UTF-8")))
    }

    /// An ArrayBuffer over `len` bytes at `data`, kept alive by `owner`, which
    /// is dropped when the ArrayBuffer is collected.
    pub fn external_arraybuffer<T: 'static>(&self, data: *mut u8, len: usize, owner: Box<T>) -> Result<napi_value> {
        unsafe extern "C" fn finalize<T>(_env: napi_env, _data: *mut c_void, hint: *mut c_void) {
            // SAFETY: hint is the Box<T> leaked below, finalized exactly once by Node.
            drop(unsafe { Box::from_raw(hint as *mut T) });
        }
        let hint = Box::into_raw(owner) as *mut c_void;
        let mut v = ptr::null_mut();
        // SAFETY: data..data+len stays valid until finalize drops its owner.
        let st = unsafe {
            napi_create_external_arraybuffer(self.0, data as *mut c_void, len, Some(finalize::<T>), hint, &mut v)
        };
        if st != NAPI_OK {
            // SAFETY: Node did not take the hint; reclaim it so the owner is dropped.
            drop(unsafe { Box::from_raw(hint as *mut T) });
            return Err(JsError::new(
                "ERR_TSAGE_NAPI",
                format!("napi_create_external_arraybuffer failed ({st})"),
            ));
        }
        Ok(v)
    }

    /// A new JavaScript-owned ArrayBuffer holding a copy of `bytes`.
    pub fn arraybuffer_copy(&self, bytes: &[u8]) -> Result<napi_value> {
        let (mut data, mut v) = (ptr::null_mut(), ptr::null_mut());
        // SAFETY: live env; out pointers valid.
        let st = unsafe { napi_create_arraybuffer(self.0, bytes.len(), &mut data, &mut v) };
        check(st, "napi_create_arraybuffer")?;
        if !bytes.is_empty() {
            // SAFETY: Node allocated bytes.len() writable bytes at data, a new buffer no one else sees yet.
            unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), data as *mut u8, bytes.len()) };
        }
        Ok(v)
    }

    /// A strong reference to `v`, which keeps it alive until [`Env::unref`].
    pub fn reference(&self, v: napi_value) -> Result<napi_ref> {
        let mut r = ptr::null_mut();
        // SAFETY: live env and handle; r is a valid out pointer.
        let st = unsafe { napi_create_reference(self.0, v, 1, &mut r) };
        check(st, "napi_create_reference")?;
        Ok(r)
    }

    /// The value a reference holds.
    pub fn deref(&self, r: napi_ref) -> Result<napi_value> {
        let mut v = ptr::null_mut();
        // SAFETY: r is a live reference created in this env; v is a valid out pointer.
        let st = unsafe { napi_get_reference_value(self.0, r, &mut v) };
        check(st, "napi_get_reference_value")?;
        Ok(v)
    }

    /// Deletes a reference made by [`Env::reference`] (exactly once).
    pub fn unref(&self, r: napi_ref) {
        // SAFETY: r was created by napi_create_reference in this env and the caller deletes it once.
        unsafe { napi_delete_reference(self.0, r) };
    }

    pub(super) fn throw(&self, e: &JsError) {
        let (Ok(code), Ok(msg)) = (self.string(e.code), self.string(&e.message)) else {
            return;
        };
        let mut err = ptr::null_mut();
        // SAFETY: code and msg are live string handles of this call.
        if unsafe { napi_create_error(self.0, code, msg, &mut err) } == NAPI_OK {
            // SAFETY: err is a live error object.
            unsafe { napi_throw(self.0, err) };
        }
    }
}

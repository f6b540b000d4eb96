//! The Node-API glue: the only module that calls into Node.
//!
//! [`sys`] declares the C functions; this file wraps the handful of calls the
//! exports need in [`Env`], turns `Result`s into thrown JavaScript errors with
//! a stable `code`, and registers the exports. Each export is a plain
//! `fn(&Env, &[napi_value]) -> Result<napi_value, JsError>` in a file of its
//! own concern ([`shm`]); one trampoline serves them all.

mod handles;
mod net;
mod netcode;
mod ring;
mod shm;
mod sys;

use std::ffi::{c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use sys::*;

/// An error to throw into JavaScript: `code` becomes `err.code`.
pub struct JsError {
    code: &'static str,
    message: String,
}

impl JsError {
    /// A `TypeError`-like argument problem, thrown with code `ERR_TSAGE_NATIVE_ARG`.
    pub fn arg(message: impl Into<String>) -> Self {
        JsError {
            code: "ERR_TSAGE_NATIVE_ARG",
            message: message.into(),
        }
    }
    /// An operating-system failure, thrown with code `ERR_TSAGE_NATIVE_IO`.
    pub fn io(what: &str, err: std::io::Error) -> Self {
        JsError {
            code: "ERR_TSAGE_NATIVE_IO",
            message: format!("{what}: {err}"),
        }
    }
    /// Any other failure with its own stable code.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        JsError {
            code,
            message: message.into(),
        }
    }
}

type Result<T> = std::result::Result<T, JsError>;
type Export = fn(&Env, &[napi_value]) -> Result<napi_value>;

/// The calling environment of one export invocation.
pub struct Env(pub(crate) napi_env);

fn check(status: napi_status, what: &str) -> Result<()> {
    if status == NAPI_OK {
        Ok(())
    } else {
        Err(JsError::new(
            "ERR_TSAGE_NAPI",
            format!("{what} failed with napi_status {status}"),
        ))
    }
}

impl Env {
    pub fn undefined(&self) -> Result<napi_value> {
        let mut v = ptr::null_mut();
        // SAFETY: self.0 is the live env of the current call; v is a valid out pointer.
        check(unsafe { napi_get_undefined(self.0, &mut v) }, "napi_get_undefined")?;
        Ok(v)
    }

    pub fn boolean(&self, b: bool) -> Result<napi_value> {
        let mut v = ptr::null_mut();
        // SAFETY: live env, valid out pointer.
        check(unsafe { napi_get_boolean(self.0, b, &mut v) }, "napi_get_boolean")?;
        Ok(v)
    }

    pub fn double(&self, x: f64) -> Result<napi_value> {
        let mut v = ptr::null_mut();
        // SAFETY: live env, valid out pointer.
        check(unsafe { napi_create_double(self.0, x, &mut v) }, "napi_create_double")?;
        Ok(v)
    }

    pub fn object(&self) -> Result<napi_value> {
        let mut v = ptr::null_mut();
        // SAFETY: live env, valid out pointer.
        check(unsafe { napi_create_object(self.0, &mut v) }, "napi_create_object")?;
        Ok(v)
    }

    pub fn string(&self, s: &str) -> Result<napi_value> {
        let mut v = ptr::null_mut();
        // SAFETY: s points to s.len() bytes of UTF-8 that outlive the call.
        let st = unsafe { napi_create_string_utf8(self.0, s.as_ptr().cast(), s.len(), &mut v) };
        check(st, "napi_create_string_utf8")?;
        Ok(v)
    }

    pub fn set(&self, obj: napi_value, name: &str, value: napi_value) -> Result<()> {
        let name = CString::new(name).map_err(|_| JsError::arg("property name has a NUL"))?;
        // SAFETY: obj and value are live handles of this call; name is NUL-terminated.
        check(
            unsafe { napi_set_named_property(self.0, obj, name.as_ptr(), value) },
            "napi_set_named_property",
        )
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

    /// The bytes behind a typed array or ArrayBuffer argument: (pointer, length in bytes).
    /// The memory stays valid while the JavaScript value is alive, which the
    /// caller's argument handle guarantees for the duration of the call.
    pub fn get_bytes(&self, v: napi_value, what: &str) -> Result<(*mut u8, usize)> {
        let mut is_ta = false;
        // SAFETY: live env and handle; valid out pointer.
        check(
            unsafe { napi_is_typedarray(self.0, v, &mut is_ta) },
            "napi_is_typedarray",
        )?;
        if is_ta {
            let (mut kind, mut len, mut data) = (0i32, 0usize, ptr::null_mut());
            let (mut ab, mut off) = (ptr::null_mut(), 0usize);
            // SAFETY: v is a typed array (checked); all out pointers are valid.
            let st = unsafe { napi_get_typedarray_info(self.0, v, &mut kind, &mut len, &mut data, &mut ab, &mut off) };
            check(st, "napi_get_typedarray_info")?;
            let elem = match kind {
                0..=2 => 1,
                3 | 4 => 2,
                5..=7 => 4,
                _ => 8,
            };
            return Ok((data as *mut u8, len * elem));
        }
        let mut is_ab = false;
        // SAFETY: live env and handle; valid out pointer.
        check(
            unsafe { napi_is_arraybuffer(self.0, v, &mut is_ab) },
            "napi_is_arraybuffer",
        )?;
        if !is_ab {
            return Err(JsError::arg(format!("{what} must be an ArrayBuffer or typed array")));
        }
        let (mut data, mut len) = (ptr::null_mut(), 0usize);
        // SAFETY: v is an ArrayBuffer (checked); out pointers are valid.
        check(
            unsafe { napi_get_arraybuffer_info(self.0, v, &mut data, &mut len) },
            "napi_get_arraybuffer_info",
        )?;
        Ok((data as *mut u8, len))
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
        check(
            unsafe { napi_create_arraybuffer(self.0, bytes.len(), &mut data, &mut v) },
            "napi_create_arraybuffer",
        )?;
        if !bytes.is_empty() {
            // SAFETY: Node allocated bytes.len() writable bytes at data.
            unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), data as *mut u8, bytes.len()) };
        }
        Ok(v)
    }

    fn throw(&self, e: &JsError) {
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

const MAX_ARGS: usize = 8;

unsafe extern "C" fn trampoline(env: napi_env, info: napi_callback_info) -> napi_value {
    let mut argc = MAX_ARGS;
    let mut argv = [ptr::null_mut(); MAX_ARGS];
    let mut data = ptr::null_mut();
    // SAFETY: env/info come from Node for this call; argv holds MAX_ARGS slots.
    let st = unsafe { napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), ptr::null_mut(), &mut data) };
    let e = Env(env);
    if st != NAPI_OK {
        e.throw(&JsError::new("ERR_TSAGE_NAPI", "napi_get_cb_info failed"));
        return ptr::null_mut();
    }
    // SAFETY: data is the Export fn pointer stored by `register` for this function.
    let f: Export = unsafe { std::mem::transmute::<*mut c_void, Export>(data) };
    let args = &argv[..argc.min(MAX_ARGS)];
    match catch_unwind(AssertUnwindSafe(|| f(&e, args))) {
        Ok(Ok(v)) => v,
        Ok(Err(err)) => {
            e.throw(&err);
            ptr::null_mut()
        }
        Err(_) => {
            e.throw(&JsError::new(
                "ERR_TSAGE_NATIVE_PANIC",
                "tsage native code panicked (a bug: please report it)",
            ));
            ptr::null_mut()
        }
    }
}

/// Argument `i`, or an error naming it when the caller passed fewer.
pub fn arg(args: &[napi_value], i: usize, what: &str) -> Result<napi_value> {
    args.get(i)
        .copied()
        .ok_or_else(|| JsError::arg(format!("missing argument {what}")))
}

fn register(env: napi_env, exports: napi_value, name: &str, f: Export) -> Result<()> {
    let e = Env(env);
    let mut func = ptr::null_mut();
    // SAFETY: name is valid UTF-8 of the given length; the fn pointer is 'static.
    let st = unsafe {
        napi_create_function(
            env,
            name.as_ptr().cast(),
            name.len(),
            trampoline,
            f as *mut c_void,
            &mut func,
        )
    };
    check(st, "napi_create_function")?;
    e.set(exports, name, func)
}

/// Called by Node when the addon is loaded.
///
/// # Safety
/// Called by Node with a live env and exports object.
#[no_mangle]
pub unsafe extern "C" fn napi_register_module_v1(env: napi_env, exports: napi_value) -> napi_value {
    let all: &[(&str, Export)] = &[
        ("shmCreate", shm::create),
        ("shmMap", shm::map),
        ("closeFd", shm::close_fd),
        ("ringRegionLen", ring::region_len),
        ("ringInit", ring::init),
        ("ringOpen", ring::open),
        ("ringCommitClaim", ring::commit_claim),
        ("ringWriteFragments", ring::write_fragments),
        ("ringReleasePoll", ring::release_poll),
        ("ringSync", ring::sync),
        ("ringClose", ring::close),
        ("setParentDeathSignal", ring::parent_death_signal),
        ("netOpen", net::open),
        ("netLocalAddress", net::local_address),
        ("netConnect", net::connect),
        ("netDisconnect", net::disconnect),
        ("netSetConditioner", net::set_conditioner),
        ("netService", net::service),
        ("netClose", net::close),
        ("netcodeGenerateToken", netcode::generate_token),
    ];
    for (name, f) in all {
        if let Err(err) = register(env, exports, name, *f) {
            Env(env).throw(&err);
            return ptr::null_mut();
        }
    }
    exports
}

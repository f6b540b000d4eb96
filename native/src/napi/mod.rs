//! The Node-API glue: the only module that calls into Node.
//!
//! [`sys`] declares the C functions; [`env`] wraps the handful of calls the
//! exports need in [`Env`] and [`buf`] checks buffer arguments. This file turns
//! `Result`s into thrown JavaScript errors with a stable `code` and registers
//! the exports. Each export is a plain
//! `fn(&Env, &[napi_value]) -> Result<napi_value, JsError>` in a file of its
//! own concern ([`shm`], [`ring`], [`net`]); one trampoline serves them all.

mod buf;
mod env;
mod handles;
mod net;
mod netcode;
mod ring;
mod secure;
mod shm;
mod sys;

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

pub use env::Env;
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

pub(crate) fn check(status: napi_status, what: &str) -> Result<()> {
    if status == NAPI_OK {
        Ok(())
    } else {
        Err(JsError::new(
            "ERR_TSAGE_NAPI",
            format!("{what} failed with napi_status {status}"),
        ))
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
        ("ringFill", ring::fill),
        ("setParentDeathSignal", ring::parent_death_signal),
        ("netLayout", net::layout),
        ("netOpen", net::open),
        ("netLocalAddress", net::local_address),
        ("netConnect", net::connect),
        ("netDisconnect", net::disconnect),
        ("netSetConditioner", net::set_conditioner),
        ("netService", net::service),
        ("netClose", net::close),
        ("netPeerStats", net::peer_stats),
        ("netConnectToken", secure::connect_token),
        ("netPeerIdentity", secure::peer_identity),
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

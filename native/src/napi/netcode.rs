//! Exports for netcode ([`crate::netcode`]): issuing connect tokens, for the
//! backend that authenticated a player.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use super::sys::{napi_get_typedarray_info, napi_is_typedarray, napi_value, NAPI_OK, NAPI_UINT8_ARRAY};
use super::{arg, Env, JsError, Result};
use crate::crypto::{Aead, CryptoError, Key};
use crate::netcode::{generate_connect_token, TokenError, TokenParams};

/// The bytes of a `Uint8Array` argument (exactly that kind), valid for this call.
pub(super) fn uint8_array<'a>(env: &'a Env, v: napi_value, what: &str) -> Result<&'a [u8]> {
    let mut is_ta = false;
    // SAFETY: env is the live env of this call and v one of its argument handles.
    if unsafe { napi_is_typedarray(env.0, v, &mut is_ta) } != NAPI_OK || !is_ta {
        return Err(JsError::arg(format!("{what} must be a Uint8Array")));
    }
    let (mut kind, mut len, mut data) = (0i32, 0usize, std::ptr::null_mut());
    let (mut buffer, mut offset) = (std::ptr::null_mut(), 0usize);
    // SAFETY: v is a typed array (checked above); every out pointer is valid.
    let st = unsafe { napi_get_typedarray_info(env.0, v, &mut kind, &mut len, &mut data, &mut buffer, &mut offset) };
    if st != NAPI_OK || kind != NAPI_UINT8_ARRAY {
        return Err(JsError::arg(format!("{what} must be a Uint8Array")));
    }
    if len == 0 || data.is_null() {
        return Ok(&[]);
    }
    // SAFETY: Node reports `len` bytes at `data` for this Uint8Array, whose
    // argument handle keeps it alive for the whole call, and no JavaScript
    // runs during the call that could detach or change it.
    Ok(unsafe { std::slice::from_raw_parts(data as *const u8, len) })
}

pub(super) fn u64_le(bytes: &[u8], what: &str) -> Result<u64> {
    let b: [u8; 8] = bytes
        .try_into()
        .map_err(|_| JsError::arg(format!("{what} must be 8 little-endian bytes, got {}", bytes.len())))?;
    Ok(u64::from_le_bytes(b))
}

pub(super) fn crypto_error(e: &CryptoError) -> JsError {
    match e {
        CryptoError::MissingSymbol(_) | CryptoError::Unavailable(_) => {
            JsError::new("ERR_TSAGE_NATIVE_LOAD", format!("tsage netcode: {e}"))
        }
        _ => JsError::new("ERR_TSAGE_CRYPTO", format!("tsage netcode: {e}")),
    }
}

fn token_error(e: TokenError) -> JsError {
    match e {
        TokenError::Crypto(c) => crypto_error(&c),
        other => JsError::arg(other.to_string()),
    }
}

/// `netcodeGenerateToken(privateKey, protocolId, clientId, serverAddresses,
/// expireSeconds, timeoutSeconds, userData) -> ArrayBuffer`: a 2048-byte
/// connect token made now. `protocolId`/`clientId` are 8-byte little-endian
/// Uint8Arrays; `serverAddresses` is newline-separated `ip:port`/`[ipv6]:port`.
pub fn generate_token(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let key = uint8_array(env, arg(args, 0, "privateKey")?, "privateKey")?;
    let private_key =
        Key::from_slice(key).ok_or_else(|| JsError::arg(format!("privateKey must be 32 bytes, got {}", key.len())))?;
    let protocol_id = u64_le(
        uint8_array(env, arg(args, 1, "protocolId")?, "protocolId")?,
        "protocolId",
    )?;
    let client_id = u64_le(uint8_array(env, arg(args, 2, "clientId")?, "clientId")?, "clientId")?;
    let list = env.get_string(arg(args, 3, "serverAddresses")?, "serverAddresses")?;
    let server_addresses = list
        .split('\n')
        .map(|s| {
            s.parse::<SocketAddr>()
                .map_err(|_| JsError::arg(format!("serverAddresses: {s:?} is not ip:port or [ipv6]:port")))
        })
        .collect::<Result<Vec<_>>>()?;
    let expire_seconds = env.get_uint(arg(args, 4, "expireSeconds")?, "expireSeconds", i32::MAX as f64)?;
    let timeout = env.get_f64(arg(args, 5, "timeoutSeconds")?, "timeoutSeconds")?;
    if !(timeout.fract() == 0.0 && timeout >= i32::MIN as f64 && timeout <= i32::MAX as f64) {
        return Err(JsError::arg(format!(
            "timeoutSeconds must be a 32-bit integer, got {timeout}"
        )));
    }
    let user_data = uint8_array(env, arg(args, 6, "userData")?, "userData")?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| JsError::new("ERR_TSAGE_CLOCK", "the system clock is before 1970"))?
        .as_secs();
    let params = TokenParams {
        protocol_id,
        client_id,
        server_addresses: &server_addresses,
        expire_seconds,
        timeout_seconds: timeout as i32,
        user_data,
        private_key: &private_key,
    };
    let mut aead = Aead::new().map_err(|e| crypto_error(&e))?;
    let token = generate_connect_token(&mut aead, &params, now).map_err(token_error)?;
    env.arraybuffer_copy(&token[..])
}

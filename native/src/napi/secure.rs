//! Exports for secure connections (netcode 1.02 under the UDP transport,
//! `net/link/secure.rs`): what `netOpen` takes to make a secure endpoint,
//! connecting with a token, who a peer is, and netcode's counters in the
//! service's result array.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use super::net::{now_ms, with_slot};
use super::netcode::{crypto_error, u64_le, uint8_array};
use super::sys::napi_value;
use super::{arg, Env, JsError, Result};
use crate::crypto::Key;
use crate::net::{Config, Endpoint, SecureListen, SecureStats, TokenConnectError};
use crate::netcode::{DropReason, ServerError, USER_DATA_BYTES};

/// How `netOpen` makes its endpoint, from its `secure` argument.
pub(super) enum Mode {
    /// `null`: the plain link.
    Plain,
    /// `{}`: a secure endpoint that only connects out, with tokens.
    Client,
    /// `{ privateKey, protocolId, publicAddress? }`: a secure listener.
    Listen {
        private_key: Key,
        protocol_id: u64,
        public_address: Option<SocketAddr>,
    },
}

/// The fields a secure listener's options take.
const FIELDS: [&str; 3] = ["privateKey", "protocolId", "publicAddress"];

/// Reads `netOpen`'s `secure` argument: `null` for the plain link, `{}` for a secure endpoint
/// that connects out, or `{ privateKey, protocolId, publicAddress? }` (32 bytes, 8 bytes
/// little-endian, `ip:port`) for a secure listener.
pub(super) fn mode(env: &Env, v: napi_value) -> Result<Mode> {
    if env.is_nullish(v)? {
        return Ok(Mode::Plain);
    }
    let keys = env.keys(v, "secure")?;
    if let Some(k) = keys.iter().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(JsError::arg(format!(
            "secure has no field '{k}' (it takes {})",
            FIELDS.join(", ")
        )));
    }
    let Some(key) = env.get(v, "privateKey")? else {
        if keys.is_empty() {
            return Ok(Mode::Client);
        }
        return Err(JsError::arg("secure.privateKey is required with secure.protocolId"));
    };
    let key = uint8_array(env, key, "secure.privateKey")?;
    let private_key = Key::from_slice(key)
        .ok_or_else(|| JsError::arg(format!("secure.privateKey must be 32 bytes, got {}", key.len())))?;
    let id = env
        .get(v, "protocolId")?
        .ok_or_else(|| JsError::arg("secure.protocolId is required with secure.privateKey"))?;
    let protocol_id = u64_le(uint8_array(env, id, "secure.protocolId")?, "secure.protocolId")?;
    let public_address = match env.get(v, "publicAddress")? {
        Some(a) => {
            let s = env.get_string(a, "secure.publicAddress")?;
            let a = s
                .parse::<SocketAddr>()
                .map_err(|_| JsError::arg(format!("secure.publicAddress: {s:?} is not ip:port or [ipv6]:port")))?;
            Some(a)
        }
        None => None,
    };
    Ok(Mode::Listen {
        private_key,
        protocol_id,
        public_address,
    })
}

fn server_error(e: ServerError) -> JsError {
    match e {
        ServerError::Crypto(c) => crypto_error(&c),
        other => JsError::arg(other.to_string()),
    }
}

/// The endpoint for `mode` on a socket bound at `local`.
pub(super) fn endpoint(mode: Mode, config: Config, seed: u64, local: SocketAddr) -> Result<Endpoint> {
    let listen = match mode {
        Mode::Plain => return Ok(Endpoint::new(config, seed)),
        Mode::Client => None,
        Mode::Listen {
            private_key,
            protocol_id,
            public_address,
        } => {
            let public_address = public_address.unwrap_or(local);
            if public_address.ip().is_unspecified() {
                return Err(JsError::arg(format!(
                    "secure.publicAddress is required when listening on {local} (tokens name the address clients reach)"
                )));
            }
            Some(SecureListen {
                protocol_id,
                private_key,
                public_address,
            })
        }
    };
    Endpoint::new_secure(config, seed, listen).map_err(server_error)
}

/// Seconds since 1970, for token expiry.
pub(super) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `netConnectToken(h, token) -> peer`: starts a secure connection with a 2048-byte connect
/// token (to its servers in order); a Connected or Disconnected event follows. A token that
/// cannot be read throws with code `ERR_TSAGE_INVALID_TOKEN`.
pub fn connect_token(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let token = uint8_array(env, arg(args, 1, "token")?, "token")?;
    let peer = with_slot(env, arg(args, 0, "h")?, |s| {
        s.driver.endpoint().connect_token(now_ms(), token).map_err(|e| match e {
            TokenConnectError::Token(_) => JsError::new("ERR_TSAGE_INVALID_TOKEN", e.to_string()),
            TokenConnectError::Crypto(c) => crypto_error(&c),
            TokenConnectError::NotSecure => JsError::arg(e.to_string()),
            _ => JsError::new("ERR_TSAGE_NET", format!("connect with a token: {e}")),
        })
    })?;
    env.double(peer as f64)
}

/// `netPeerIdentity(h, peer) -> ArrayBuffer | undefined`: a secure listener's peer's client id
/// (8 bytes little-endian) then its token's 256 bytes of user data; undefined for any other peer.
pub fn peer_identity(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let peer = env.get_uint(arg(args, 1, "peer")?, "peer", u32::MAX as f64)? as u32;
    let id = with_slot(env, arg(args, 0, "h")?, |s| Ok(s.driver.endpoint().peer_identity(peer)))?;
    match id {
        Some(id) => {
            let mut b = [0u8; 8 + USER_DATA_BYTES];
            b[..8].copy_from_slice(&id.client_id.to_le_bytes());
            b[8..].copy_from_slice(&id.user_data);
            env.arraybuffer_copy(&b)
        }
        None => env.undefined(),
    }
}

/// Reads one secure counter.
type Counter = fn(&SecureStats) -> u64;

/// netcode's counters, before one per drop reason (`netcodeDropped` + its name).
#[rustfmt::skip]
const COUNTERS: [(&str, Counter); 5] = [
    ("netcodeTokenDecryptions", |s| s.netcode.token_decryptions),
    ("netcodeDatagramsSent", |s| s.netcode.datagrams_sent),
    ("netcodeDatagramsAccepted", |s| s.netcode.datagrams_accepted),
    ("netcodeConnectedClients", |s| s.connected_clients),
    ("netcodeEncryptionMappings", |s| s.encryption_mappings),
];

/// Slots the secure counters take in the service's result array.
pub(super) const COUNTER_SLOTS: usize = COUNTERS.len() + DropReason::COUNT;

/// The names of the secure counters, in their order in the result array.
pub(super) fn counter_names() -> Vec<String> {
    let named = COUNTERS.iter().map(|c| c.0.to_string());
    named
        .chain(DropReason::ALL.iter().map(|r| format!("netcodeDropped{}", r.name())))
        .collect()
}

/// Writes the secure counters (zeros for a plain endpoint) into `out`.
pub(super) fn write_counters(stats: Option<&SecureStats>, out: &mut [f64]) {
    let zero = SecureStats::default();
    let s = stats.unwrap_or(&zero);
    for (slot, (_, get)) in out.iter_mut().zip(COUNTERS.iter()) {
        *slot = get(s) as f64;
    }
    for (slot, r) in out[COUNTERS.len()..].iter_mut().zip(DropReason::ALL.iter()) {
        *slot = s.netcode.dropped(*r) as f64;
    }
}

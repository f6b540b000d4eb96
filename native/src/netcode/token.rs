//! The connect token (netcode 1.02, "Connect Token"): a 2048-byte public part
//! the client reads, wrapping a 1024-byte private part that only the backend
//! and the dedicated servers can read, encrypted with XChaCha20-Poly1305 under
//! their shared private key, a random 24-byte nonce and the associated data
//! `version info || protocol id || expire timestamp`.

use std::fmt;
use std::net::SocketAddr;

use super::address::{self, AddressError};
use super::wire::{Reader, Writer};
use super::{
    CONNECT_TOKEN_BYTES, CONNECT_TOKEN_NONCE_BYTES, CONNECT_TOKEN_PRIVATE_BYTES, MAX_SERVERS_PER_CONNECT,
    USER_DATA_BYTES, VERSION_INFO,
};
use crate::crypto::{fill_random, Aead, CryptoError, Key, Secret, KEY_BYTES, TAG_BYTES};

/// Why a token could not be made or read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenError {
    /// Not 1..=32 server addresses.
    ServerAddressCount(usize),
    /// More than 256 bytes of user data.
    UserDataTooLong(usize),
    /// A public token that is not 2048 bytes.
    BadLength(usize),
    /// The version info is not "NETCODE 1.02".
    BadVersion,
    /// The create timestamp is after the expire timestamp.
    CreatedAfterExpiry,
    /// `now + expireSeconds` does not fit in 64 bits.
    ExpireOverflow,
    /// A server address could not be read.
    BadAddress(AddressError),
    /// Encryption failed (or OpenSSL is missing).
    Crypto(CryptoError),
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::ServerAddressCount(n) => {
                write!(
                    f,
                    "ConnectToken.serverAddresses must hold 1 to {MAX_SERVERS_PER_CONNECT} addresses, got {n}"
                )
            }
            TokenError::UserDataTooLong(n) => {
                write!(
                    f,
                    "ConnectToken.userData must be at most {USER_DATA_BYTES} bytes, got {n}"
                )
            }
            TokenError::BadLength(n) => write!(f, "ConnectToken must be {CONNECT_TOKEN_BYTES} bytes, got {n}"),
            TokenError::BadVersion => f.write_str("ConnectToken.versionInfo is not \"NETCODE 1.02\""),
            TokenError::CreatedAfterExpiry => f.write_str("ConnectToken.createTimestamp is after its expireTimestamp"),
            TokenError::ExpireOverflow => f.write_str("ConnectToken.expireSeconds overflows the expire timestamp"),
            TokenError::BadAddress(AddressError::Truncated) => f.write_str("ConnectToken.serverAddresses is truncated"),
            TokenError::BadAddress(AddressError::BadType(t)) => {
                write!(
                    f,
                    "ConnectToken.serverAddresses has address type {t} (1 = IPv4, 2 = IPv6)"
                )
            }
            TokenError::Crypto(e) => write!(f, "ConnectToken encryption: {e}"),
        }
    }
}

impl std::error::Error for TokenError {}

impl From<CryptoError> for TokenError {
    fn from(e: CryptoError) -> Self {
        TokenError::Crypto(e)
    }
}

impl From<AddressError> for TokenError {
    fn from(e: AddressError) -> Self {
        TokenError::BadAddress(e)
    }
}

fn check_addresses(addrs: &[SocketAddr]) -> Result<(), TokenError> {
    if addrs.is_empty() || addrs.len() > MAX_SERVERS_PER_CONNECT {
        return Err(TokenError::ServerAddressCount(addrs.len()));
    }
    Ok(())
}

fn read_addresses(r: &mut Reader<'_>) -> Result<Vec<SocketAddr>, TokenError> {
    let n = r.u32().ok_or(AddressError::Truncated)? as usize;
    if n == 0 || n > MAX_SERVERS_PER_CONNECT {
        return Err(TokenError::ServerAddressCount(n));
    }
    (0..n).map(|_| address::read(r).map_err(TokenError::from)).collect()
}

fn write_addresses(w: &mut Writer<'_>, addrs: &[SocketAddr]) {
    w.u32(addrs.len() as u32);
    for a in addrs {
        address::write(w, a);
    }
}

fn read_key(r: &mut Reader<'_>) -> Result<Key, TokenError> {
    let b = r.bytes(KEY_BYTES).ok_or(AddressError::Truncated)?;
    Ok(Key::from_slice(b).expect("KEY_BYTES bytes"))
}

/// The private part of a connect token, decrypted.
#[derive(Debug)]
pub struct PrivateToken {
    /// Who the backend authenticated.
    pub client_id: u64,
    /// Seconds of silence before either side times out; negative disables.
    pub timeout_seconds: i32,
    /// The servers this token may be used on (1..=32).
    pub server_addresses: Vec<SocketAddr>,
    /// Key of packets from client to server.
    pub client_to_server_key: Key,
    /// Key of packets from server to client.
    pub server_to_client_key: Key,
    /// Opaque data for the server application.
    pub user_data: Secret<USER_DATA_BYTES>,
}

impl PrivateToken {
    /// Writes the plaintext layout, zero padded, into `out`.
    pub fn write(&self, out: &mut [u8; CONNECT_TOKEN_PRIVATE_BYTES]) -> Result<(), TokenError> {
        check_addresses(&self.server_addresses)?;
        let mut w = Writer::new(out);
        w.u64(self.client_id);
        w.u32(self.timeout_seconds as u32);
        write_addresses(&mut w, &self.server_addresses);
        w.bytes(self.client_to_server_key.bytes());
        w.bytes(self.server_to_client_key.bytes());
        w.bytes(self.user_data.bytes());
        debug_assert!(w.pos() <= CONNECT_TOKEN_PRIVATE_BYTES - TAG_BYTES);
        w.pad();
        Ok(())
    }

    /// Reads the plaintext layout (the standard's reasons to refuse: 1..=32
    /// addresses of type 1 or 2).
    pub fn read(buf: &[u8; CONNECT_TOKEN_PRIVATE_BYTES]) -> Result<Self, TokenError> {
        let mut r = Reader::new(&buf[..CONNECT_TOKEN_PRIVATE_BYTES - TAG_BYTES]);
        let client_id = r.u64().ok_or(AddressError::Truncated)?;
        let timeout_seconds = r.u32().ok_or(AddressError::Truncated)? as i32;
        let server_addresses = read_addresses(&mut r)?;
        let client_to_server_key = read_key(&mut r)?;
        let server_to_client_key = read_key(&mut r)?;
        let ud = r.bytes(USER_DATA_BYTES).ok_or(AddressError::Truncated)?;
        Ok(PrivateToken {
            client_id,
            timeout_seconds,
            server_addresses,
            client_to_server_key,
            server_to_client_key,
            user_data: Secret::from_slice(ud).expect("USER_DATA_BYTES bytes"),
        })
    }
}

/// The private token's associated data.
pub fn private_aad(protocol_id: u64, expire_timestamp: u64) -> [u8; 29] {
    let mut ad = [0u8; 29];
    ad[..13].copy_from_slice(VERSION_INFO);
    ad[13..21].copy_from_slice(&protocol_id.to_le_bytes());
    ad[21..].copy_from_slice(&expire_timestamp.to_le_bytes());
    ad
}

/// Encrypts a written private token in place: the first 1008 bytes become
/// ciphertext and the last 16 the tag.
pub fn encrypt_private(
    aead: &mut Aead,
    buf: &mut [u8; CONNECT_TOKEN_PRIVATE_BYTES],
    protocol_id: u64,
    expire_timestamp: u64,
    nonce: &[u8; CONNECT_TOKEN_NONCE_BYTES],
    key: &Key,
) -> Result<(), CryptoError> {
    let (body, tag) = buf.split_at_mut(CONNECT_TOKEN_PRIVATE_BYTES - TAG_BYTES);
    let t = aead.xseal_in_place(key, nonce, &private_aad(protocol_id, expire_timestamp), body)?;
    tag.copy_from_slice(&t);
    Ok(())
}

/// Decrypts an encrypted private token in place (zeroed if it fails).
pub fn decrypt_private(
    aead: &mut Aead,
    buf: &mut [u8; CONNECT_TOKEN_PRIVATE_BYTES],
    protocol_id: u64,
    expire_timestamp: u64,
    nonce: &[u8; CONNECT_TOKEN_NONCE_BYTES],
    key: &Key,
) -> Result<(), CryptoError> {
    let (body, tag) = buf.split_at_mut(CONNECT_TOKEN_PRIVATE_BYTES - TAG_BYTES);
    let t: [u8; TAG_BYTES] = (&*tag).try_into().expect("TAG_BYTES bytes");
    aead.xopen_in_place(key, nonce, &private_aad(protocol_id, expire_timestamp), body, &t)
}

/// The public connect token, as the client holds it.
#[derive(Debug)]
pub struct ConnectToken {
    /// The game's protocol id.
    pub protocol_id: u64,
    /// Unix seconds when the backend made it.
    pub create_timestamp: u64,
    /// Unix seconds after which servers refuse it.
    pub expire_timestamp: u64,
    /// The private part's XChaCha20 nonce.
    pub nonce: [u8; CONNECT_TOKEN_NONCE_BYTES],
    /// The encrypted private part (with its tag), sent as is in connection requests.
    pub private_data: Box<[u8; CONNECT_TOKEN_PRIVATE_BYTES]>,
    /// Seconds of silence before either side times out; negative disables.
    pub timeout_seconds: i32,
    /// Servers to try, in order.
    pub server_addresses: Vec<SocketAddr>,
    /// Key of packets from client to server.
    pub client_to_server_key: Key,
    /// Key of packets from server to client.
    pub server_to_client_key: Key,
}

impl ConnectToken {
    /// Writes the 2048-byte layout, zero padded.
    pub fn write(&self, out: &mut [u8; CONNECT_TOKEN_BYTES]) -> Result<(), TokenError> {
        check_addresses(&self.server_addresses)?;
        let mut w = Writer::new(out);
        w.bytes(VERSION_INFO);
        w.u64(self.protocol_id);
        w.u64(self.create_timestamp);
        w.u64(self.expire_timestamp);
        w.bytes(&self.nonce);
        w.bytes(&self.private_data[..]);
        w.u32(self.timeout_seconds as u32);
        write_addresses(&mut w, &self.server_addresses);
        w.bytes(self.client_to_server_key.bytes());
        w.bytes(self.server_to_client_key.bytes());
        w.pad();
        Ok(())
    }

    /// Reads and checks a public token as a client must before using it
    /// (length, version, timestamps in order, 1..=32 addresses of type 1 or 2).
    pub fn read(buf: &[u8]) -> Result<Self, TokenError> {
        if buf.len() != CONNECT_TOKEN_BYTES {
            return Err(TokenError::BadLength(buf.len()));
        }
        let mut r = Reader::new(buf);
        let truncated = || TokenError::BadAddress(AddressError::Truncated);
        if r.bytes(VERSION_INFO.len()) != Some(&VERSION_INFO[..]) {
            return Err(TokenError::BadVersion);
        }
        let protocol_id = r.u64().ok_or_else(truncated)?;
        let create_timestamp = r.u64().ok_or_else(truncated)?;
        let expire_timestamp = r.u64().ok_or_else(truncated)?;
        if create_timestamp > expire_timestamp {
            return Err(TokenError::CreatedAfterExpiry);
        }
        let nonce = r.array().ok_or_else(truncated)?;
        let private_data = Box::new(r.array().ok_or_else(truncated)?);
        let timeout_seconds = r.u32().ok_or_else(truncated)? as i32;
        let server_addresses = read_addresses(&mut r)?;
        Ok(ConnectToken {
            protocol_id,
            create_timestamp,
            expire_timestamp,
            nonce,
            private_data,
            timeout_seconds,
            server_addresses,
            client_to_server_key: read_key(&mut r)?,
            server_to_client_key: read_key(&mut r)?,
        })
    }
}

/// What a backend asks for when it issues a token.
#[derive(Clone, Copy, Debug)]
pub struct TokenParams<'a> {
    /// The game's protocol id.
    pub protocol_id: u64,
    /// Who the player is.
    pub client_id: u64,
    /// 1..=32 servers, tried in order (the public and internal addresses are the same).
    pub server_addresses: &'a [SocketAddr],
    /// Seconds from now until servers refuse the token.
    pub expire_seconds: u64,
    /// Seconds of silence before either side times out; negative disables.
    pub timeout_seconds: i32,
    /// Up to 256 bytes for the server application (zero padded).
    pub user_data: &'a [u8],
    /// The key shared by the backend and the servers.
    pub private_key: &'a Key,
}

/// Makes a connect token at unix time `now` with fresh random packet keys
/// and nonce, as `netcode_generate_connect_token` does.
pub fn generate_connect_token(
    aead: &mut Aead,
    p: &TokenParams<'_>,
    now: u64,
) -> Result<Box<[u8; CONNECT_TOKEN_BYTES]>, TokenError> {
    check_addresses(p.server_addresses)?;
    if p.user_data.len() > USER_DATA_BYTES {
        return Err(TokenError::UserDataTooLong(p.user_data.len()));
    }
    let expire_timestamp = now.checked_add(p.expire_seconds).ok_or(TokenError::ExpireOverflow)?;
    let mut user_data = Secret::<USER_DATA_BYTES>::zero();
    user_data.bytes_mut()[..p.user_data.len()].copy_from_slice(p.user_data);
    let private = PrivateToken {
        client_id: p.client_id,
        timeout_seconds: p.timeout_seconds,
        server_addresses: p.server_addresses.to_vec(),
        client_to_server_key: Key::random()?,
        server_to_client_key: Key::random()?,
        user_data,
    };
    let mut nonce = [0u8; CONNECT_TOKEN_NONCE_BYTES];
    fill_random(&mut nonce)?;
    let mut sealed = Secret::<CONNECT_TOKEN_PRIVATE_BYTES>::zero();
    private.write(sealed.bytes_mut())?;
    encrypt_private(
        aead,
        sealed.bytes_mut(),
        p.protocol_id,
        expire_timestamp,
        &nonce,
        p.private_key,
    )?;
    let token = ConnectToken {
        protocol_id: p.protocol_id,
        create_timestamp: now,
        expire_timestamp,
        nonce,
        private_data: Box::new(*sealed.bytes()),
        timeout_seconds: p.timeout_seconds,
        server_addresses: private.server_addresses.clone(),
        client_to_server_key: private.client_to_server_key.clone(),
        server_to_client_key: private.server_to_client_key.clone(),
    };
    let mut out = Box::new([0u8; CONNECT_TOKEN_BYTES]);
    token.write(&mut out)?;
    Ok(out)
}

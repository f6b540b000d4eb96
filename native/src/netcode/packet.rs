//! The seven packet types (netcode 1.02, "Packets"), their prefix byte, the
//! minimal variable-length sequence, each encrypted packet's associated data
//! (`version info || protocol id || prefix byte`) and nonce
//! (`0000 || sequence`), and reading in the standard's order of checks.

use super::replay::ReplayProtection;
use super::stats::DropReason;
use super::{
    CHALLENGE_TOKEN_BYTES, CONNECT_TOKEN_NONCE_BYTES, CONNECT_TOKEN_PRIVATE_BYTES, MAX_PAYLOAD_BYTES,
    REQUEST_PACKET_BYTES, VERSION_INFO,
};
use crate::crypto::{Aead, CryptoError, Key, NONCE_BYTES, TAG_BYTES};

/// A packet type: the low 4 bits of the prefix byte.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketType {
    /// Connection request (0): not encrypted.
    Request = 0,
    /// Connection denied (1).
    Denied = 1,
    /// Connection challenge (2).
    Challenge = 2,
    /// Connection response (3).
    Response = 3,
    /// Connection keep-alive (4).
    KeepAlive = 4,
    /// Connection payload (5).
    Payload = 5,
    /// Connection disconnect (6).
    Disconnect = 6,
}

/// A connection request (the one packet that is not encrypted).
#[derive(Clone, Copy, Debug)]
pub struct RequestPacket<'a> {
    /// The game's protocol id.
    pub protocol_id: u64,
    /// The connect token's expire timestamp.
    pub expire_timestamp: u64,
    /// The connect token's nonce.
    pub nonce: &'a [u8; CONNECT_TOKEN_NONCE_BYTES],
    /// The encrypted private connect token.
    pub token: &'a [u8; CONNECT_TOKEN_PRIVATE_BYTES],
}

/// An encrypted packet's contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    /// The server refuses the client (full).
    Denied,
    /// The server's challenge: the token sequence and encrypted challenge token.
    Challenge {
        /// Challenge token sequence.
        sequence: u64,
        /// Encrypted challenge token.
        token: &'a [u8; CHALLENGE_TOKEN_BYTES],
    },
    /// The client's echo of the challenge.
    Response {
        /// Challenge token sequence.
        sequence: u64,
        /// Encrypted challenge token.
        token: &'a [u8; CHALLENGE_TOKEN_BYTES],
    },
    /// Keeps the connection alive; from the server it also carries the slot.
    KeepAlive {
        /// The client's slot (0 from the client).
        client_index: u32,
        /// The server's number of slots (0 from the client).
        max_clients: u32,
    },
    /// Application bytes, 1..=1200.
    Payload(&'a [u8]),
    /// Goodbye (sent redundantly).
    Disconnect,
}

impl Packet<'_> {
    /// Its type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Denied => PacketType::Denied,
            Packet::Challenge { .. } => PacketType::Challenge,
            Packet::Response { .. } => PacketType::Response,
            Packet::KeepAlive { .. } => PacketType::KeepAlive,
            Packet::Payload(_) => PacketType::Payload,
            Packet::Disconnect => PacketType::Disconnect,
        }
    }
}

/// Which packet types a side reads (a bit per type).
#[derive(Clone, Copy, Debug)]
pub struct Allowed(u8);

impl Allowed {
    /// The server: response, keep-alive, payload, disconnect (requests take their own path).
    pub const SERVER: Allowed = Allowed(1 << 3 | 1 << 4 | 1 << 5 | 1 << 6);
    /// The client: denied, challenge, keep-alive, payload, disconnect.
    pub const CLIENT: Allowed = Allowed(1 << 1 | 1 << 2 | 1 << 4 | 1 << 5 | 1 << 6);

    fn has(self, packet_type: u8) -> bool {
        self.0 & (1 << packet_type) != 0
    }
}

/// Bytes of the minimal encoding of `sequence` (1..=8; zero takes one byte).
pub fn sequence_bytes(sequence: u64) -> usize {
    (((64 - sequence.leading_zeros()) as usize).div_ceil(8)).max(1)
}

/// The 96-bit nonce of a 64-bit sequence: four zero bytes, then the sequence
/// little-endian.
pub fn sequence_nonce(sequence: u64) -> [u8; NONCE_BYTES] {
    let mut n = [0u8; NONCE_BYTES];
    n[4..].copy_from_slice(&sequence.to_le_bytes());
    n
}

/// An encrypted packet's associated data.
pub fn packet_aad(protocol_id: u64, prefix: u8) -> [u8; 22] {
    let mut ad = [0u8; 22];
    ad[..13].copy_from_slice(VERSION_INFO);
    ad[13..21].copy_from_slice(&protocol_id.to_le_bytes());
    ad[21] = prefix;
    ad
}

/// Writes a connection request into `out` (at least 1078 bytes); returns its length.
pub fn write_request(p: &RequestPacket<'_>, out: &mut [u8]) -> Option<usize> {
    let out = out.get_mut(..REQUEST_PACKET_BYTES)?;
    out[0] = PacketType::Request as u8;
    out[1..14].copy_from_slice(VERSION_INFO);
    out[14..22].copy_from_slice(&p.protocol_id.to_le_bytes());
    out[22..30].copy_from_slice(&p.expire_timestamp.to_le_bytes());
    out[30..54].copy_from_slice(p.nonce);
    out[54..].copy_from_slice(p.token);
    Some(REQUEST_PACKET_BYTES)
}

/// Why an encrypted packet was not written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteError {
    /// `out` cannot hold the packet.
    BufferTooSmall,
    /// A payload outside 1..=1200 bytes.
    PayloadSize(usize),
    /// Encryption failed.
    Crypto(CryptoError),
}

/// Encrypts `p` with `sequence` under `key` into `out`; returns its length.
pub fn write_packet(
    aead: &mut Aead,
    p: &Packet<'_>,
    sequence: u64,
    key: &Key,
    protocol_id: u64,
    out: &mut [u8],
) -> Result<usize, WriteError> {
    if let Packet::Payload(b) = p {
        if b.is_empty() || b.len() > MAX_PAYLOAD_BYTES {
            return Err(WriteError::PayloadSize(b.len()));
        }
    }
    let seq_len = sequence_bytes(sequence);
    let prefix = (seq_len as u8) << 4 | p.packet_type() as u8;
    let head = 1 + seq_len;
    let data_len = match p {
        Packet::Denied | Packet::Disconnect => 0,
        Packet::Challenge { .. } | Packet::Response { .. } => 8 + CHALLENGE_TOKEN_BYTES,
        Packet::KeepAlive { .. } => 8,
        Packet::Payload(b) => b.len(),
    };
    let total = head + data_len + TAG_BYTES;
    let out = out.get_mut(..total).ok_or(WriteError::BufferTooSmall)?;
    out[0] = prefix;
    out[1..head].copy_from_slice(&sequence.to_le_bytes()[..seq_len]);
    let (data, tag) = out[head..].split_at_mut(data_len);
    match p {
        Packet::Denied | Packet::Disconnect => {}
        Packet::Challenge { sequence: s, token } | Packet::Response { sequence: s, token } => {
            data[..8].copy_from_slice(&s.to_le_bytes());
            data[8..].copy_from_slice(&token[..]);
        }
        Packet::KeepAlive {
            client_index,
            max_clients,
        } => {
            data[..4].copy_from_slice(&client_index.to_le_bytes());
            data[4..].copy_from_slice(&max_clients.to_le_bytes());
        }
        Packet::Payload(b) => data.copy_from_slice(b),
    }
    let t = aead
        .seal_in_place(key, &sequence_nonce(sequence), &packet_aad(protocol_id, prefix), data)
        .map_err(WriteError::Crypto)?;
    tag.copy_from_slice(&t);
    Ok(total)
}

/// Bytes a payload packet puts before its payload at most: the prefix byte and
/// an 8-byte sequence.
pub const PAYLOAD_HEADROOM: usize = 1 + 8;

/// Encrypts, in place, the payload `dg[headroom..]` (1..=1200 bytes) into a
/// payload packet with `sequence` under `key`: the prefix byte and the
/// minimal sequence go just before the payload, the tag after it, and the
/// packet is moved to the front of `dg` (by the headroom it did not use).
/// The same bytes as [`write_packet`] of [`Packet::Payload`], without a copy
/// of the payload. `headroom` must be at least [`PAYLOAD_HEADROOM`].
pub fn seal_payload_in_place(
    aead: &mut Aead,
    dg: &mut Vec<u8>,
    headroom: usize,
    sequence: u64,
    key: &Key,
    protocol_id: u64,
) -> Result<(), WriteError> {
    let len = dg.len().saturating_sub(headroom);
    if headroom < PAYLOAD_HEADROOM || len == 0 || len > MAX_PAYLOAD_BYTES {
        return Err(WriteError::PayloadSize(len));
    }
    let seq_len = sequence_bytes(sequence);
    let prefix = (seq_len as u8) << 4 | PacketType::Payload as u8;
    let start = headroom - 1 - seq_len;
    dg[start] = prefix;
    dg[start + 1..headroom].copy_from_slice(&sequence.to_le_bytes()[..seq_len]);
    let tag = aead
        .seal_in_place(
            key,
            &sequence_nonce(sequence),
            &packet_aad(protocol_id, prefix),
            &mut dg[headroom..],
        )
        .map_err(WriteError::Crypto)?;
    dg.extend_from_slice(&tag);
    if start > 0 {
        dg.copy_within(start.., 0);
        dg.truncate(dg.len() - start);
    }
    Ok(())
}

/// Checks a connection request in the standard's order up to (not including)
/// decrypting its token: size, version info, protocol id, expiry (`now` in
/// unix seconds).
pub fn read_request(d: &[u8], protocol_id: u64, now: u64) -> Result<RequestPacket<'_>, DropReason> {
    if d.len() != REQUEST_PACKET_BYTES {
        return Err(DropReason::RequestBadSize);
    }
    if &d[1..14] != VERSION_INFO {
        return Err(DropReason::RequestBadVersion);
    }
    if u64::from_le_bytes(d[14..22].try_into().expect("8 bytes")) != protocol_id {
        return Err(DropReason::RequestWrongProtocol);
    }
    let expire_timestamp = u64::from_le_bytes(d[22..30].try_into().expect("8 bytes"));
    if expire_timestamp <= now {
        return Err(DropReason::RequestTokenExpired);
    }
    Ok(RequestPacket {
        protocol_id,
        expire_timestamp,
        nonce: d[30..54].try_into().expect("24 bytes"),
        token: d[54..].try_into().expect("1024 bytes"),
    })
}

fn expected_size(packet_type: u8, len: usize) -> bool {
    match packet_type {
        1 | 6 => len == 0,
        2 | 3 => len == 8 + CHALLENGE_TOKEN_BYTES,
        4 => len == 8,
        5 => (1..=MAX_PAYLOAD_BYTES).contains(&len),
        _ => false,
    }
}

/// Reads an encrypted packet in the standard's order of checks: size, type,
/// allowed type, sequence bytes, size for them, size for the type, replay
/// (keep-alive, payload, disconnect, when `replay` is given), decryption
/// into `scratch`, then the replay window advances. Returns the sequence and
/// the packet, whose bytes borrow `scratch`, which must hold the packet's
/// decrypted part (at most 308 or 1200 bytes once the sizes are checked, so
/// [`super::MAX_PACKET_BYTES`] always do); with a shorter one the packet fails
/// as [`DropReason::Unauthentic`].
pub fn read_packet<'s>(
    aead: &mut Aead,
    d: &[u8],
    key: &Key,
    protocol_id: u64,
    allowed: Allowed,
    mut replay: Option<&mut ReplayProtection>,
    scratch: &'s mut [u8],
) -> Result<(u64, Packet<'s>), DropReason> {
    if d.len() < 1 + 1 + TAG_BYTES {
        return Err(DropReason::TooSmall);
    }
    let prefix = d[0];
    let packet_type = prefix & 0xf;
    if packet_type >= 7 {
        return Err(DropReason::BadPacketType);
    }
    if !allowed.has(packet_type) {
        return Err(DropReason::PacketTypeNotAllowed);
    }
    let seq_len = (prefix >> 4) as usize;
    if !(1..=8).contains(&seq_len) {
        return Err(DropReason::BadSequenceBytes);
    }
    if d.len() < 1 + seq_len + TAG_BYTES {
        return Err(DropReason::TooSmall);
    }
    let data_len = d.len() - 1 - seq_len - TAG_BYTES;
    if !expected_size(packet_type, data_len) {
        return Err(DropReason::BadSize);
    }
    let mut seq_le = [0u8; 8];
    seq_le[..seq_len].copy_from_slice(&d[1..1 + seq_len]);
    let sequence = u64::from_le_bytes(seq_le);
    let protected = packet_type >= PacketType::KeepAlive as u8;
    if protected && replay.as_ref().is_some_and(|r| r.already_received(sequence)) {
        return Err(DropReason::Replayed);
    }
    let body = &d[1 + seq_len..1 + seq_len + data_len];
    let tag: [u8; TAG_BYTES] = d[d.len() - TAG_BYTES..].try_into().expect("16 bytes");
    let aad = packet_aad(protocol_id, prefix);
    aead.open(key, &sequence_nonce(sequence), &aad, body, &tag, scratch)
        .map_err(|_| DropReason::Unauthentic)?;
    if protected {
        if let Some(r) = replay.as_mut() {
            r.advance(sequence);
        }
    }
    let data = &scratch[..data_len];
    let packet = match packet_type {
        1 => Packet::Denied,
        2 | 3 => {
            let sequence = u64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
            let token = data[8..].try_into().expect("300 bytes");
            if packet_type == 2 {
                Packet::Challenge { sequence, token }
            } else {
                Packet::Response { sequence, token }
            }
        }
        4 => Packet::KeepAlive {
            client_index: u32::from_le_bytes(data[..4].try_into().expect("4 bytes")),
            max_clients: u32::from_le_bytes(data[4..].try_into().expect("4 bytes")),
        },
        5 => Packet::Payload(data),
        _ => Packet::Disconnect,
    };
    Ok((sequence, packet))
}

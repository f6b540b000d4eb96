//! The netcode server ("Server-Side Connection Process"): client slots,
//! connection requests checked in the standard's exact order, challenge and
//! response, pending clients' encryption mappings, keep-alives, timeouts
//! from the token and redundant disconnect packets.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;

use super::address::canonical;
use super::challenge::{decrypt_challenge, encrypt_challenge, ChallengeToken};
use super::mappings::{Mapping, Mappings, TokenHistory};
use super::outbox::{Outbox, Span};
use super::packet::{read_packet, read_request, seal_payload_in_place, write_packet, Allowed, Packet, WriteError};
use super::replay::ReplayProtection;
use super::stats::{DropReason, Stats};
use super::token::{decrypt_private, PrivateToken};
use super::{
    seconds_ms, CHALLENGE_TOKEN_BYTES, CONNECT_TOKEN_PRIVATE_BYTES, MAPPINGS_PER_CLIENT, MAX_CLIENTS, MAX_PACKET_BYTES,
    MAX_PAYLOAD_BYTES, NUM_DISCONNECT_PACKETS, PACKET_SEND_INTERVAL_MS, TOKEN_HISTORY_PER_CLIENT, USER_DATA_BYTES,
};
use crate::crypto::{Aead, CryptoError, Key, Secret, TAG_BYTES};

/// A dedicated server's identity.
#[derive(Debug)]
pub struct ServerConfig {
    /// The game's protocol id; requests for another are ignored.
    pub protocol_id: u64,
    /// The key shared with the backend that issues connect tokens.
    pub private_key: Key,
    /// This server's address as the backend writes it in tokens.
    pub public_address: SocketAddr,
    /// Client slots, 1..=65535.
    pub max_clients: usize,
}

/// Why a client left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisconnectReason {
    /// This side called `disconnect`.
    Local,
    /// The other side sent disconnect packets.
    Remote,
    /// Nothing was heard for the token's timeout.
    TimedOut,
}

/// What happened on the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerEvent {
    /// A client completed the handshake and holds `slot`.
    Connected {
        /// Its slot, 0..max_clients.
        slot: u32,
        /// The client id from its connect token.
        client_id: u64,
        /// Where it sends from.
        addr: SocketAddr,
        /// Its token's 256 bytes of user data.
        user_data: Span,
    },
    /// A payload packet arrived.
    Payload {
        /// From this slot.
        slot: u32,
        /// The payload.
        bytes: Span,
    },
    /// A client is gone and its slot free.
    Disconnected {
        /// The slot it held.
        slot: u32,
        /// Why.
        reason: DisconnectReason,
    },
}

/// Why a server call was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerError {
    /// `max_clients` outside 1..=65535.
    BadMaxClients(usize),
    /// No client holds this slot.
    NotConnected(u32),
    /// A payload outside 1..=1200 bytes.
    PayloadSize(usize),
    /// OpenSSL could not be used.
    Crypto(CryptoError),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::BadMaxClients(n) => write!(f, "ServerConfig.maxClients must be 1 to {MAX_CLIENTS}, got {n}"),
            ServerError::NotConnected(s) => write!(f, "no client is connected in slot {s}"),
            ServerError::PayloadSize(n) => write!(f, "a payload must be 1 to {MAX_PAYLOAD_BYTES} bytes, got {n}"),
            ServerError::Crypto(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ServerError {}

#[derive(Debug)]
struct Slot {
    addr: SocketAddr,
    client_id: u64,
    mapping: usize,
    timeout_seconds: i32,
    confirmed: bool,
    /// A payload went out while unconfirmed: a keep-alive follows at the next update.
    owes_keep_alive: bool,
    sequence: u64,
    last_send: u64,
    last_recv: u64,
    replay: ReplayProtection,
    user_data: Secret<USER_DATA_BYTES>,
    token_mac: [u8; TAG_BYTES],
}

/// A decrypted packet (a payload stays in the outbox's arena, where it was decrypted: its length).
enum Received {
    Response(u64, Box<[u8; CHALLENGE_TOKEN_BYTES]>),
    KeepAlive,
    Payload(usize),
    Disconnect,
}

/// The server state machine.
pub struct Server {
    protocol_id: u64,
    private_key: Key,
    public_address: SocketAddr,
    aead: Aead,
    challenge_key: Key,
    challenge_sequence: u64,
    global_sequence: u64,
    slots: Vec<Option<Box<Slot>>>,
    by_addr: HashMap<SocketAddr, u32>,
    connected: usize,
    mappings: Mappings,
    tokens: TokenHistory,
    stats: Stats,
}

impl Server {
    /// A server with empty slots and a fresh random challenge key.
    pub fn new(config: ServerConfig) -> Result<Server, ServerError> {
        if config.max_clients == 0 || config.max_clients > MAX_CLIENTS {
            return Err(ServerError::BadMaxClients(config.max_clients));
        }
        let n = config.max_clients;
        Ok(Server {
            protocol_id: config.protocol_id,
            private_key: config.private_key,
            public_address: canonical(config.public_address),
            aead: Aead::new().map_err(ServerError::Crypto)?,
            challenge_key: Key::random().map_err(ServerError::Crypto)?,
            challenge_sequence: 0,
            // Packets to addresses without a slot (challenge, denied) use the
            // upper half of the sequence space, so they never share a nonce
            // with the same key's packets to the slot, which start at 0.
            global_sequence: 1 << 63,
            slots: (0..n).map(|_| None).collect(),
            by_addr: HashMap::new(),
            connected: 0,
            mappings: Mappings::new(n * MAPPINGS_PER_CLIENT),
            tokens: TokenHistory::new(n * TOKEN_HISTORY_PER_CLIENT),
            stats: Stats::default(),
        })
    }

    /// Handles one datagram from `from` at monotonic `now` (ms) and unix time
    /// `unix_now` (s, for token expiry). `hint` is the slot the caller believes
    /// `from` holds (the endpoint has looked the address up already): used only
    /// if its client is at `from`, else the server looks the address up, so a
    /// wrong hint changes nothing but the cost.
    pub fn receive(
        &mut self,
        now: u64,
        unix_now: u64,
        from: SocketAddr,
        datagram: &[u8],
        hint: Option<u32>,
        out: &mut Outbox<ServerEvent>,
    ) {
        let from = canonical(from);
        let r = match datagram.first() {
            None => Err(DropReason::TooSmall),
            Some(0) => self.on_request(now, unix_now, from, datagram, out),
            Some(_) => self.on_encrypted(now, from, datagram, hint, out),
        };
        match r {
            Ok(()) => self.stats.datagrams_accepted += 1,
            Err(reason) => self.stats.drop(reason),
        }
    }

    fn on_request(
        &mut self,
        now: u64,
        unix_now: u64,
        from: SocketAddr,
        d: &[u8],
        out: &mut Outbox<ServerEvent>,
    ) -> Result<(), DropReason> {
        let req = read_request(d, self.protocol_id, unix_now)?;
        let mut plain = Secret::<CONNECT_TOKEN_PRIVATE_BYTES>::from_bytes(*req.token);
        self.stats.token_decryptions += 1;
        decrypt_private(
            &mut self.aead,
            plain.bytes_mut(),
            self.protocol_id,
            req.expire_timestamp,
            req.nonce,
            &self.private_key,
        )
        .map_err(|_| DropReason::RequestTokenUndecryptable)?;
        let token = PrivateToken::read(plain.bytes()).map_err(|_| DropReason::RequestTokenUnreadable)?;
        if !token
            .server_addresses
            .iter()
            .any(|a| canonical(*a) == self.public_address)
        {
            return Err(DropReason::RequestServerNotInToken);
        }
        if self.by_addr.contains_key(&from) {
            return Err(DropReason::AddressAlreadyConnected);
        }
        if self.slot_of_client(token.client_id).is_some() {
            return Err(DropReason::ClientIdAlreadyConnected);
        }
        let mac: [u8; TAG_BYTES] = req.token[CONNECT_TOKEN_PRIVATE_BYTES - TAG_BYTES..]
            .try_into()
            .expect("16 bytes");
        if !self.tokens.find_or_add(from, &mac, now) {
            return Err(DropReason::RequestTokenUsedElsewhere);
        }
        if self.connected == self.slots.len() {
            self.send_global(from, &Packet::Denied, &token.server_to_client_key, out);
            return Err(DropReason::ServerFull);
        }
        let mapping = Mapping {
            addr: from,
            send_key: token.server_to_client_key.clone(),
            recv_key: token.client_to_server_key.clone(),
            timeout_seconds: token.timeout_seconds,
            expire_at: (token.timeout_seconds >= 0).then(|| now + seconds_ms(token.timeout_seconds)),
            last_access: now,
            slot: None,
            token_mac: mac,
        };
        self.mappings
            .add(mapping, now)
            .ok_or(DropReason::RequestNoMappingRoom)?;
        let mut challenge = Box::new([0u8; CHALLENGE_TOKEN_BYTES]);
        ChallengeToken {
            client_id: token.client_id,
            user_data: token.user_data.clone(),
        }
        .write(&mut challenge);
        let sequence = self.challenge_sequence;
        if encrypt_challenge(&mut self.aead, &mut challenge, sequence, &self.challenge_key).is_err() {
            return Err(DropReason::Unexpected);
        }
        self.challenge_sequence += 1;
        let packet = Packet::Challenge {
            sequence,
            token: &challenge,
        };
        self.send_global(from, &packet, &token.server_to_client_key, out);
        Ok(())
    }

    fn on_encrypted(
        &mut self,
        now: u64,
        from: SocketAddr,
        d: &[u8],
        hint: Option<u32>,
        out: &mut Outbox<ServerEvent>,
    ) -> Result<(), DropReason> {
        let hinted = hint.filter(|&s| self.client(s).is_some_and(|c| c.addr == from));
        let slot = hinted.or_else(|| self.by_addr.get(&from).copied());
        let mapping = match slot {
            Some(s) => self.slot(s).mapping,
            None => self.mappings.find(from, now).ok_or(DropReason::NoEncryptionMapping)?,
        };
        let replay = match slot {
            Some(s) => Some(&mut self.slots[s as usize].as_mut().expect("indexed slots are live").replay),
            None => None,
        };
        let key = &self.mappings.get(mapping).recv_key;
        // Decrypted into the outbox, where a payload stays (a datagram too long fails its size check).
        let start = out.grow(d.len().min(MAX_PACKET_BYTES));
        let read = read_packet(
            &mut self.aead,
            d,
            key,
            self.protocol_id,
            Allowed::SERVER,
            replay,
            out.tail_mut(start),
        )
        .and_then(|(_, packet)| match packet {
            Packet::Response { sequence, token } => Ok(Received::Response(sequence, Box::new(*token))),
            Packet::KeepAlive { .. } => Ok(Received::KeepAlive),
            Packet::Payload(b) if slot.is_some() => Ok(Received::Payload(b.len())),
            Packet::Disconnect => Ok(Received::Disconnect),
            _ => Err(DropReason::Unexpected),
        });
        if !matches!(read, Ok(Received::Payload(_))) {
            out.shrink(start);
        }
        match (read?, slot) {
            (Received::Response(sequence, token), _) => self.on_response(now, from, mapping, sequence, token, out),
            (Received::KeepAlive, Some(s)) => {
                self.heard_from(s, now);
                Ok(())
            }
            (Received::Payload(len), Some(s)) => {
                self.heard_from(s, now);
                let bytes = out.keep(start, len);
                out.push_event(ServerEvent::Payload { slot: s, bytes });
                Ok(())
            }
            (Received::Disconnect, Some(s)) => {
                self.remove_slot(s, DisconnectReason::Remote, out);
                Ok(())
            }
            _ => Err(DropReason::Unexpected),
        }
    }

    fn on_response(
        &mut self,
        now: u64,
        from: SocketAddr,
        mapping: usize,
        sequence: u64,
        mut token: Box<[u8; CHALLENGE_TOKEN_BYTES]>,
        out: &mut Outbox<ServerEvent>,
    ) -> Result<(), DropReason> {
        decrypt_challenge(&mut self.aead, &mut token, sequence, &self.challenge_key)
            .map_err(|_| DropReason::ResponseChallengeUndecryptable)?;
        let challenge = ChallengeToken::read(&token);
        if self.by_addr.contains_key(&from) {
            return Err(DropReason::AddressAlreadyConnected);
        }
        if self.slot_of_client(challenge.client_id).is_some() {
            return Err(DropReason::ClientIdAlreadyConnected);
        }
        let Some(free) = self.slots.iter().position(Option::is_none) else {
            let key = self.mappings.get(mapping).send_key.clone();
            self.send_global(from, &Packet::Denied, &key, out);
            return Err(DropReason::ServerFull);
        };
        let m = self.mappings.get_mut(mapping);
        m.expire_at = None;
        m.slot = Some(free as u32);
        let (timeout_seconds, token_mac) = (m.timeout_seconds, m.token_mac);
        self.slots[free] = Some(Box::new(Slot {
            addr: from,
            client_id: challenge.client_id,
            mapping,
            timeout_seconds,
            confirmed: false,
            owes_keep_alive: false,
            sequence: self.tokens.next_sequence(&token_mac),
            last_send: now,
            last_recv: now,
            replay: ReplayProtection::default(),
            user_data: challenge.user_data.clone(),
            token_mac,
        }));
        self.by_addr.insert(from, free as u32);
        self.connected += 1;
        self.send_keep_alive(free as u32, now, out);
        let user_data = out.push_bytes(challenge.user_data.bytes());
        out.push_event(ServerEvent::Connected {
            slot: free as u32,
            client_id: challenge.client_id,
            addr: from,
            user_data,
        });
        Ok(())
    }

    /// Sends due keep-alives (and one after payloads sealed in place for a
    /// client that has not confirmed its slot) and times out silent clients.
    pub fn update(&mut self, now: u64, out: &mut Outbox<ServerEvent>) {
        for s in 0..self.slots.len() as u32 {
            if let Some(c) = self.slots[s as usize].as_mut() {
                let owed = std::mem::take(&mut c.owes_keep_alive) && !c.confirmed;
                if owed || c.last_send + PACKET_SEND_INTERVAL_MS <= now {
                    self.send_keep_alive(s, now, out);
                }
            }
        }
        for s in 0..self.slots.len() as u32 {
            let silent = self.slots[s as usize]
                .as_ref()
                .is_some_and(|c| c.timeout_seconds > 0 && c.last_recv + seconds_ms(c.timeout_seconds) <= now);
            if silent {
                self.remove_slot(s, DisconnectReason::TimedOut, out);
            }
        }
    }

    /// Sends `payload` (1..=1200 bytes) to the client in `slot`, preceded by a
    /// keep-alive while the client has not confirmed its slot.
    pub fn send_payload(
        &mut self,
        now: u64,
        slot: u32,
        payload: &[u8],
        out: &mut Outbox<ServerEvent>,
    ) -> Result<(), ServerError> {
        if payload.is_empty() || payload.len() > MAX_PAYLOAD_BYTES {
            return Err(ServerError::PayloadSize(payload.len()));
        }
        let confirmed = self.client(slot).ok_or(ServerError::NotConnected(slot))?.confirmed;
        if !confirmed {
            self.send_keep_alive(slot, now, out);
        }
        self.send_to_slot(slot, now, &Packet::Payload(payload), out)
            .map_err(|e| match e {
                WriteError::Crypto(c) => ServerError::Crypto(c),
                _ => ServerError::PayloadSize(payload.len()),
            })
    }

    /// Encrypts the payload `dg[headroom..]` in place into a payload packet to
    /// the client in `slot` (see [`seal_payload_in_place`]), for the caller to
    /// send. The keep-alive an unconfirmed client needs goes out at the next
    /// [`Server::update`] rather than before the payload.
    pub fn seal_payload(&mut self, now: u64, slot: u32, dg: &mut Vec<u8>, headroom: usize) -> Result<(), ServerError> {
        let Server {
            slots,
            mappings,
            aead,
            stats,
            protocol_id,
            ..
        } = self;
        let c = slots
            .get_mut(slot as usize)
            .and_then(Option::as_mut)
            .ok_or(ServerError::NotConnected(slot))?;
        let m = mappings.get_mut(c.mapping);
        seal_payload_in_place(aead, dg, headroom, c.sequence, &m.send_key, *protocol_id).map_err(|e| match e {
            WriteError::Crypto(e) => ServerError::Crypto(e),
            _ => ServerError::PayloadSize(dg.len().saturating_sub(headroom)),
        })?;
        m.last_access = now;
        c.sequence += 1;
        c.last_send = now;
        c.owes_keep_alive |= !c.confirmed;
        stats.datagrams_sent += 1;
        Ok(())
    }

    /// Sends the client in `slot` redundant disconnect packets and frees the
    /// slot. False if the slot was empty.
    pub fn disconnect(&mut self, now: u64, slot: u32, out: &mut Outbox<ServerEvent>) -> bool {
        if self.client(slot).is_none() {
            return false;
        }
        for _ in 0..NUM_DISCONNECT_PACKETS {
            // A packet that failed to encrypt is not sent; the client then times out.
            let _ = self.send_to_slot(slot, now, &Packet::Disconnect, out);
        }
        self.remove_slot(slot, DisconnectReason::Local, out);
        true
    }

    /// Disconnects every client.
    pub fn disconnect_all(&mut self, now: u64, out: &mut Outbox<ServerEvent>) {
        for s in 0..self.slots.len() as u32 {
            self.disconnect(now, s, out);
        }
    }

    /// The client id in `slot`, if connected.
    pub fn client_id(&self, slot: u32) -> Option<u64> {
        self.client(slot).map(|c| c.client_id)
    }

    /// The address of the client in `slot`, if connected.
    pub fn client_address(&self, slot: u32) -> Option<SocketAddr> {
        self.client(slot).map(|c| c.addr)
    }

    /// The user data of the client in `slot`, if connected.
    pub fn client_user_data(&self, slot: u32) -> Option<&[u8; USER_DATA_BYTES]> {
        self.client(slot).map(|c| c.user_data.bytes())
    }

    /// Connected clients.
    pub fn connected_clients(&self) -> usize {
        self.connected
    }

    /// Client slots.
    pub fn max_clients(&self) -> usize {
        self.slots.len()
    }

    /// Encryption mappings held (pending and connected clients).
    pub fn encryption_mappings(&self) -> usize {
        self.mappings.len()
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    fn client(&self, slot: u32) -> Option<&Slot> {
        self.slots.get(slot as usize)?.as_deref()
    }

    fn slot(&self, slot: u32) -> &Slot {
        self.client(slot).expect("indexed slots are live")
    }

    fn slot_of_client(&self, client_id: u64) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.as_ref().is_some_and(|c| c.client_id == client_id))
    }

    fn heard_from(&mut self, slot: u32, now: u64) {
        let c = self.slots[slot as usize].as_mut().expect("indexed slots are live");
        c.last_recv = now;
        c.confirmed = true;
    }

    fn remove_slot(&mut self, slot: u32, reason: DisconnectReason, out: &mut Outbox<ServerEvent>) {
        let Some(c) = self.slots[slot as usize].take() else {
            return;
        };
        self.tokens.set_next_sequence(&c.token_mac, c.sequence);
        self.by_addr.remove(&c.addr);
        self.mappings.remove(c.mapping);
        self.connected -= 1;
        out.push_event(ServerEvent::Disconnected { slot, reason });
    }

    fn send_keep_alive(&mut self, slot: u32, now: u64, out: &mut Outbox<ServerEvent>) {
        let packet = Packet::KeepAlive {
            client_index: slot,
            max_clients: self.slots.len() as u32,
        };
        // A packet that failed to encrypt is not sent; the next interval retries.
        let _ = self.send_to_slot(slot, now, &packet, out);
    }

    fn send_to_slot(
        &mut self,
        slot: u32,
        now: u64,
        packet: &Packet<'_>,
        out: &mut Outbox<ServerEvent>,
    ) -> Result<(), WriteError> {
        let Server {
            slots,
            mappings,
            aead,
            stats,
            protocol_id,
            ..
        } = self;
        let c = slots[slot as usize].as_mut().expect("callers check the slot");
        let m = mappings.get_mut(c.mapping);
        m.last_access = now;
        let (seq, key) = (c.sequence, &m.send_key);
        out.push_datagram(c.addr, MAX_PACKET_BYTES, |buf| {
            write_packet(aead, packet, seq, key, *protocol_id, buf)
        })?;
        c.sequence += 1;
        c.last_send = now;
        stats.datagrams_sent += 1;
        Ok(())
    }

    fn send_global(&mut self, to: SocketAddr, packet: &Packet<'_>, key: &Key, out: &mut Outbox<ServerEvent>) {
        let (aead, seq, protocol_id) = (&mut self.aead, self.global_sequence, self.protocol_id);
        if out
            .push_datagram(to, MAX_PACKET_BYTES, |buf| {
                write_packet(aead, packet, seq, key, protocol_id, buf)
            })
            .is_ok()
        {
            self.global_sequence += 1;
            self.stats.datagrams_sent += 1;
        }
    }
}

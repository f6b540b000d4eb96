//! The netcode client ("Client State Machine"): sends connection requests,
//! then the challenge response, to each server address of its token in
//! turn, and ends in `Connected` or in one of the error states, which say why.

use std::fmt;
use std::net::SocketAddr;

use super::address::canonical;
use super::outbox::{Outbox, Span};
use super::packet::{
    read_packet, seal_payload_in_place, write_packet, write_request, Allowed, Packet, RequestPacket, WriteError,
};
use super::replay::ReplayProtection;
use super::stats::{DropReason, Stats};
use super::token::{ConnectToken, TokenError};
use super::{
    seconds_ms, CHALLENGE_TOKEN_BYTES, MAX_PACKET_BYTES, MAX_PAYLOAD_BYTES, NUM_DISCONNECT_PACKETS,
    PACKET_SEND_INTERVAL_MS, REQUEST_PACKET_BYTES,
};
use crate::crypto::{Aead, CryptoError};

/// The client's states, numbered as in the standard; negative ones are errors.
#[repr(i8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientState {
    /// The token expired before a server accepted it.
    ConnectTokenExpired = -6,
    /// The token could not be read.
    InvalidConnectToken = -5,
    /// A connected server went silent for the token's timeout.
    ConnectionTimedOut = -4,
    /// No server answered the challenge response within the timeout.
    ConnectionResponseTimedOut = -3,
    /// No server answered the connection request within the timeout.
    ConnectionRequestTimedOut = -2,
    /// The (last) server refused: it is full.
    ConnectionDenied = -1,
    /// Not connected, no error.
    Disconnected = 0,
    /// Sending connection requests.
    SendingConnectionRequest = 1,
    /// Sending challenge responses.
    SendingConnectionResponse = 2,
    /// Connected.
    Connected = 3,
}

impl ClientState {
    /// True for the negative states.
    pub fn is_error(self) -> bool {
        (self as i8) < 0
    }

    /// True while connecting.
    pub fn is_connecting(self) -> bool {
        matches!(
            self,
            ClientState::SendingConnectionRequest | ClientState::SendingConnectionResponse
        )
    }

    /// The state's name in the standard.
    pub const fn name(self) -> &'static str {
        match self {
            ClientState::ConnectTokenExpired => "connect token expired",
            ClientState::InvalidConnectToken => "invalid connect token",
            ClientState::ConnectionTimedOut => "connection timed out",
            ClientState::ConnectionResponseTimedOut => "connection response timed out",
            ClientState::ConnectionRequestTimedOut => "connection request timed out",
            ClientState::ConnectionDenied => "connection denied",
            ClientState::Disconnected => "disconnected",
            ClientState::SendingConnectionRequest => "sending connection request",
            ClientState::SendingConnectionResponse => "sending connection response",
            ClientState::Connected => "connected",
        }
    }
}

impl fmt::Display for ClientState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What happened on the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// A server accepted the client into `client_index`.
    Connected {
        /// The slot the server gave this client.
        client_index: u32,
        /// The server's number of slots.
        max_clients: u32,
        /// The server's address.
        server: SocketAddr,
    },
    /// A payload packet arrived.
    Payload {
        /// The payload.
        bytes: Span,
    },
    /// The client stopped; an error `state` says why a connect failed.
    Disconnected {
        /// The state it ended in.
        state: ClientState,
    },
}

/// Why a client call was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientError {
    /// The token was refused (the client is now in `InvalidConnectToken`).
    InvalidToken(TokenError),
    /// Not connected.
    NotConnected(ClientState),
    /// A payload outside 1..=1200 bytes.
    PayloadSize(usize),
    /// OpenSSL could not be used.
    Crypto(CryptoError),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::InvalidToken(e) => write!(f, "invalid connect token: {e}"),
            ClientError::NotConnected(s) => write!(f, "not connected (client state: {s})"),
            ClientError::PayloadSize(n) => write!(f, "a payload must be 1 to {MAX_PAYLOAD_BYTES} bytes, got {n}"),
            ClientError::Crypto(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ClientError {}

/// The client state machine.
pub struct Client {
    state: ClientState,
    token: Option<ConnectToken>,
    server_index: usize,
    connect_start: u64,
    last_send: Option<u64>,
    last_recv: u64,
    /// Never reset, so that a token used twice by one client never repeats a nonce.
    sequence: u64,
    challenge: Option<(u64, Box<[u8; CHALLENGE_TOKEN_BYTES]>)>,
    client_index: u32,
    max_clients: u32,
    replay: ReplayProtection,
    aead: Aead,
    stats: Stats,
}

/// A decrypted packet, read out of the outbox's arena where it was decrypted (a payload
/// stays there: its length).
enum Got {
    Denied,
    Challenge(u64, Box<[u8; CHALLENGE_TOKEN_BYTES]>),
    KeepAlive(u32, u32),
    Payload(usize),
    Disconnect,
    Other,
}

impl Client {
    /// A disconnected client.
    pub fn new() -> Result<Client, CryptoError> {
        Ok(Client {
            state: ClientState::Disconnected,
            token: None,
            server_index: 0,
            connect_start: 0,
            last_send: None,
            last_recv: 0,
            sequence: 0,
            challenge: None,
            client_index: 0,
            max_clients: 0,
            replay: ReplayProtection::default(),
            aead: Aead::new()?,
            stats: Stats::default(),
        })
    }

    /// Starts connecting with a 2048-byte connect token (disconnecting first
    /// if needed). A token that cannot be read leaves the client in
    /// `InvalidConnectToken`.
    pub fn connect(&mut self, now: u64, token: &[u8], out: &mut Outbox<ClientEvent>) -> Result<(), ClientError> {
        self.disconnect(now, out);
        match ConnectToken::read(token) {
            Ok(t) => {
                self.token = Some(t);
                self.server_index = 0;
                self.connect_start = now;
                self.start_server(now);
                Ok(())
            }
            Err(e) => {
                self.state = ClientState::InvalidConnectToken;
                Err(ClientError::InvalidToken(e))
            }
        }
    }

    fn start_server(&mut self, now: u64) {
        self.last_send = None;
        self.last_recv = now;
        self.challenge = None;
        self.replay.reset();
        self.state = ClientState::SendingConnectionRequest;
    }

    /// The server address currently tried (or connected to).
    pub fn server_address(&self) -> Option<SocketAddr> {
        Some(canonical(
            *self.token.as_ref()?.server_addresses.get(self.server_index)?,
        ))
    }

    /// Handles one datagram from `from` at monotonic `now` (ms).
    pub fn receive(&mut self, now: u64, from: SocketAddr, datagram: &[u8], out: &mut Outbox<ClientEvent>) {
        match self.on_datagram(now, canonical(from), datagram, out) {
            Ok(()) => self.stats.datagrams_accepted += 1,
            Err(reason) => self.stats.drop(reason),
        }
    }

    fn on_datagram(
        &mut self,
        now: u64,
        from: SocketAddr,
        d: &[u8],
        out: &mut Outbox<ClientEvent>,
    ) -> Result<(), DropReason> {
        let active = self.state.is_connecting() || self.state == ClientState::Connected;
        let (Some(token), true) = (self.token.as_ref(), active) else {
            return Err(DropReason::Unexpected);
        };
        if self.server_address() != Some(from) {
            return Err(DropReason::NotFromServer);
        }
        match d.first() {
            None => return Err(DropReason::TooSmall),
            Some(0) => return Err(DropReason::PacketTypeNotAllowed),
            Some(_) => {}
        }
        let key = &token.server_to_client_key;
        let replay = Some(&mut self.replay);
        // Decrypted straight into the outbox, where a payload stays for the caller to read (an
        // oversized datagram fails its size check before anything is decrypted).
        let start = out.grow(d.len().min(MAX_PACKET_BYTES));
        let got = read_packet(
            &mut self.aead,
            d,
            key,
            token.protocol_id,
            Allowed::CLIENT,
            replay,
            out.tail_mut(start),
        )
        .map(|(_, packet)| match packet {
            Packet::Denied => Got::Denied,
            Packet::Challenge { sequence, token } => Got::Challenge(sequence, Box::new(*token)),
            Packet::KeepAlive {
                client_index,
                max_clients,
            } => Got::KeepAlive(client_index, max_clients),
            Packet::Payload(b) => Got::Payload(b.len()),
            Packet::Disconnect => Got::Disconnect,
            Packet::Response { .. } => Got::Other,
        });
        if !matches!((&got, self.state), (Ok(Got::Payload(_)), ClientState::Connected)) {
            out.shrink(start);
        }
        match (got?, self.state) {
            (Got::Denied, s) if s.is_connecting() => {
                self.last_recv = now;
                self.next_server_or(now, ClientState::ConnectionDenied, out);
            }
            (Got::Challenge(sequence, token), ClientState::SendingConnectionRequest) => {
                self.challenge = Some((sequence, token));
                self.last_recv = now;
                self.state = ClientState::SendingConnectionResponse;
                // The first response goes at once (the standard allows it), not at
                // the next 10 Hz step: that halves the handshake's time.
                self.send_due(now, out);
            }
            (Got::KeepAlive(..), ClientState::Connected) => self.last_recv = now,
            (Got::KeepAlive(client_index, max_clients), ClientState::SendingConnectionResponse) => {
                self.last_recv = now;
                self.client_index = client_index;
                self.max_clients = max_clients;
                self.state = ClientState::Connected;
                out.push_event(ClientEvent::Connected {
                    client_index,
                    max_clients,
                    server: from,
                });
            }
            (Got::Payload(len), ClientState::Connected) => {
                self.last_recv = now;
                let bytes = out.keep(start, len);
                out.push_event(ClientEvent::Payload { bytes });
            }
            (Got::Disconnect, ClientState::Connected) => self.stop(ClientState::Disconnected, out),
            _ => return Err(DropReason::Unexpected),
        }
        Ok(())
    }

    /// Sends what is due (requests, responses or keep-alives at 10 Hz), then
    /// checks the token's expiry and timeout.
    pub fn update(&mut self, now: u64, out: &mut Outbox<ClientEvent>) {
        let Some(token) = self.token.as_ref() else {
            return;
        };
        if !(self.state.is_connecting() || self.state == ClientState::Connected) {
            return;
        }
        let (timeout, lifetime) = (token.timeout_seconds, token.expire_timestamp - token.create_timestamp);
        if self.last_send.is_none_or(|t| t + PACKET_SEND_INTERVAL_MS < now) {
            self.send_due(now, out);
        }
        if self.state.is_connecting() && now.saturating_sub(self.connect_start) >= lifetime.saturating_mul(1000) {
            self.stop(ClientState::ConnectTokenExpired, out);
            return;
        }
        if timeout > 0 && self.last_recv + seconds_ms(timeout) < now {
            match self.state {
                ClientState::SendingConnectionRequest => {
                    self.next_server_or(now, ClientState::ConnectionRequestTimedOut, out)
                }
                ClientState::SendingConnectionResponse => {
                    self.next_server_or(now, ClientState::ConnectionResponseTimedOut, out)
                }
                _ => self.stop(ClientState::ConnectionTimedOut, out),
            }
        }
    }

    fn send_due(&mut self, now: u64, out: &mut Outbox<ClientEvent>) {
        match self.state {
            ClientState::SendingConnectionRequest => {
                let (Some(token), Some(to)) = (self.token.as_ref(), self.server_address()) else {
                    return;
                };
                let req = RequestPacket {
                    protocol_id: token.protocol_id,
                    expire_timestamp: token.expire_timestamp,
                    nonce: &token.nonce,
                    token: &token.private_data,
                };
                if out
                    .push_datagram(to, REQUEST_PACKET_BYTES, |buf| write_request(&req, buf).ok_or(()))
                    .is_ok()
                {
                    self.last_send = Some(now);
                    self.stats.datagrams_sent += 1;
                }
            }
            ClientState::SendingConnectionResponse => {
                let Some((sequence, token)) = self.challenge.take() else {
                    return;
                };
                // A packet that failed to encrypt is not sent; the next interval retries.
                let _ = self.send(
                    now,
                    &Packet::Response {
                        sequence,
                        token: &token,
                    },
                    out,
                );
                self.challenge = Some((sequence, token));
            }
            _ => {
                let keep_alive = Packet::KeepAlive {
                    client_index: 0,
                    max_clients: 0,
                };
                let _ = self.send(now, &keep_alive, out);
            }
        }
    }

    fn send(&mut self, now: u64, packet: &Packet<'_>, out: &mut Outbox<ClientEvent>) -> Result<(), WriteError> {
        let (Some(token), Some(to)) = (self.token.as_ref(), self.server_address()) else {
            return Ok(());
        };
        let (aead, seq) = (&mut self.aead, self.sequence);
        let (key, protocol_id) = (&token.client_to_server_key, token.protocol_id);
        out.push_datagram(to, MAX_PACKET_BYTES, |buf| {
            write_packet(aead, packet, seq, key, protocol_id, buf)
        })?;
        self.sequence += 1;
        self.last_send = Some(now);
        self.stats.datagrams_sent += 1;
        Ok(())
    }

    /// Sends `payload` (1..=1200 bytes) to the server; only while connected.
    pub fn send_payload(&mut self, now: u64, payload: &[u8], out: &mut Outbox<ClientEvent>) -> Result<(), ClientError> {
        if self.state != ClientState::Connected {
            return Err(ClientError::NotConnected(self.state));
        }
        if payload.is_empty() || payload.len() > MAX_PAYLOAD_BYTES {
            return Err(ClientError::PayloadSize(payload.len()));
        }
        self.send(now, &Packet::Payload(payload), out).map_err(|e| match e {
            WriteError::Crypto(c) => ClientError::Crypto(c),
            _ => ClientError::PayloadSize(payload.len()),
        })
    }

    /// Encrypts the payload `dg[headroom..]` in place into a payload packet to
    /// the server (see [`seal_payload_in_place`]), for the caller to send; only
    /// while connected.
    pub fn seal_payload(&mut self, now: u64, dg: &mut Vec<u8>, headroom: usize) -> Result<(), ClientError> {
        let (Some(token), ClientState::Connected) = (self.token.as_ref(), self.state) else {
            return Err(ClientError::NotConnected(self.state));
        };
        let (key, protocol_id) = (&token.client_to_server_key, token.protocol_id);
        seal_payload_in_place(&mut self.aead, dg, headroom, self.sequence, key, protocol_id).map_err(|e| match e {
            WriteError::Crypto(c) => ClientError::Crypto(c),
            _ => ClientError::PayloadSize(dg.len().saturating_sub(headroom)),
        })?;
        self.sequence += 1;
        self.last_send = Some(now);
        self.stats.datagrams_sent += 1;
        Ok(())
    }

    /// The last 16 bytes of the encrypted private token (its MAC), which the
    /// connection requests carry: what a refusal from a listener that takes
    /// no tokens echoes, so that only who saw a request can forge one.
    pub fn request_tag(&self) -> Option<&[u8]> {
        let t = self.token.as_ref()?;
        Some(&t.private_data[t.private_data.len() - crate::crypto::TAG_BYTES..])
    }

    /// The server being tried said (outside netcode) that it takes no connect
    /// tokens: like a denial, go on to the token's next server or stop in
    /// `ConnectionDenied`. Ignored unless sending connection requests. Returns
    /// whether the client stopped.
    pub fn refused_by_listener(&mut self, now: u64, out: &mut Outbox<ClientEvent>) -> bool {
        if self.state != ClientState::SendingConnectionRequest {
            self.stats.drop(DropReason::Unexpected);
            return false;
        }
        self.stats.datagrams_accepted += 1;
        self.next_server_or(now, ClientState::ConnectionDenied, out);
        self.state != ClientState::SendingConnectionRequest
    }

    /// Sends redundant disconnect packets (if connecting or connected) and
    /// stops in `Disconnected`.
    pub fn disconnect(&mut self, now: u64, out: &mut Outbox<ClientEvent>) {
        if !(self.state.is_connecting() || self.state == ClientState::Connected) {
            return;
        }
        for _ in 0..NUM_DISCONNECT_PACKETS {
            let _ = self.send(now, &Packet::Disconnect, out);
        }
        self.stop(ClientState::Disconnected, out);
    }

    fn next_server_or(&mut self, now: u64, failure: ClientState, out: &mut Outbox<ClientEvent>) {
        let servers = self.token.as_ref().map_or(0, |t| t.server_addresses.len());
        if self.server_index + 1 < servers {
            self.server_index += 1;
            self.start_server(now);
        } else {
            self.stop(failure, out);
        }
    }

    fn stop(&mut self, state: ClientState, out: &mut Outbox<ClientEvent>) {
        self.state = state;
        self.token = None;
        self.challenge = None;
        self.client_index = 0;
        self.max_clients = 0;
        out.push_event(ClientEvent::Disconnected { state });
    }

    /// The current state.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// The slot the server gave this client, while connected.
    pub fn client_index(&self) -> Option<u32> {
        (self.state == ClientState::Connected).then_some(self.client_index)
    }

    /// The server's number of slots, while connected.
    pub fn max_clients(&self) -> Option<u32> {
        (self.state == ClientState::Connected).then_some(self.max_clients)
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

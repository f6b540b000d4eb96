//! The one event log and its layout, which is also the layout JavaScript reads.
//!
//! Events are encoded one after another in one buffer, so handing them to the
//! addon's caller is a single copy. Every event starts with a tag byte and the
//! peer id (u32, little-endian, like every integer here); [`LAYOUT`] lists
//! each kind's tag and field offsets, and the addon exports that list
//! (`netLayout()`), so TypeScript reads offsets from here instead of keeping a
//! copy of its own. The endpoint produces connections, departures, messages
//! and faults; the addon's send path produces [`Tag::Refused`] and
//! [`Tag::Pending`] in a log of its own.

use std::net::SocketAddr;

use super::{DisconnectReason, PeerId};
use crate::netcode::ClientState;

/// Offset of the tag byte in every event.
pub const AT_TAG: usize = 0;
/// Offset of the peer id (u32) in every event.
pub const AT_PEER: usize = 1;
/// Offset of an event's own fields.
const AT_FIELDS: usize = 5;

/// Message: channel u8 (plus [`RELIABLE_BIT`] when sent reliably).
pub const MESSAGE_CHANNEL: usize = AT_FIELDS;
/// Message: payload length u32.
pub const MESSAGE_LENGTH: usize = AT_FIELDS + 1;
/// Message: first payload byte.
pub const MESSAGE_PAYLOAD: usize = AT_FIELDS + 5;
/// Set in a message event's channel byte when the message was sent in a reliable mode.
pub const RELIABLE_BIT: u8 = 0x80;
/// Connected: length u8 of the address text.
pub const CONNECTED_ADDR_LENGTH: usize = AT_FIELDS;
/// Connected: the address as text (`ip:port`, `[ip]:port` for IPv6).
pub const CONNECTED_ADDR: usize = AT_FIELDS + 1;
/// Disconnected: reason u8 (index into [`DISCONNECT_REASONS`]).
pub const DISCONNECTED_REASON: usize = AT_FIELDS;
/// Disconnected: event size.
const DISCONNECTED_LEN: usize = AT_FIELDS + 1;
/// Refused: reason u8 (index into [`REFUSAL_REASONS`]).
pub const REFUSED_REASON: usize = AT_FIELDS;
/// Refused: number of send entries refused, not counting those flagged as control entries (u32).
pub const REFUSED_COUNT: usize = AT_FIELDS + 1;
const REFUSED_LEN: usize = AT_FIELDS + 5;
/// Pending: bytes (u32) of the peer's send entries left in the send buffer for the next service.
pub const PENDING_BYTES: usize = AT_FIELDS;
const PENDING_LEN: usize = AT_FIELDS + 4;
/// Fault: kind u8 (index into [`FAULT_KINDS`]).
pub const FAULT_KIND: usize = AT_FIELDS;
/// Fault: where (u32): the missing reliable id, or the channel (see [`Fault`]).
pub const FAULT_DETAIL: usize = AT_FIELDS + 1;
const FAULT_LEN: usize = AT_FIELDS + 5;

/// The kinds of event.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    /// A handshake completed.
    Connected = 1,
    /// A peer is gone.
    Disconnected = 2,
    /// A message arrived.
    Message = 3,
    /// Send entries that can never be sent (their peer is gone, or they are not valid), dropped.
    Refused = 4,
    /// How much of a peer's sends wait in the send buffer: the backpressure the caller sees.
    Pending = 5,
    /// The peer broke the protocol and is being disconnected (a departure with reason
    /// `error` follows): what it did.
    Fault = 6,
}

/// The netcode client's error states, as [`DisconnectReason::Secure`] carries them, in the
/// order of their codes (after the other reasons).
pub const SECURE_FAILURES: [ClientState; 6] = [
    ClientState::ConnectTokenExpired,
    ClientState::InvalidConnectToken,
    ClientState::ConnectionTimedOut,
    ClientState::ConnectionResponseTimedOut,
    ClientState::ConnectionRequestTimedOut,
    ClientState::ConnectionDenied,
];

/// Code of the first [`SECURE_FAILURES`] state.
const SECURE_BASE: u8 = 7;

/// Names of [`DisconnectReason`]s, by their code in a disconnected event: the netcode states by
/// their names in the standard.
pub const DISCONNECT_REASONS: [&str; 13] = [
    "local",
    "remote",
    "timeout",
    "refused",
    "error",
    "token-required",
    "not-secure",
    SECURE_FAILURES[0].name(),
    SECURE_FAILURES[1].name(),
    SECURE_FAILURES[2].name(),
    SECURE_FAILURES[3].name(),
    SECURE_FAILURES[4].name(),
    SECURE_FAILURES[5].name(),
];

/// What a peer did that the endpoint disconnected it for: a gap in its reliable data that
/// it never filled, for `timeout_ms` while it was otherwise alive.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A reliable id below ones received never came (the detail is the missing id, low 32 bits).
    Gap = 0,
    /// A reliable-ordered channel waited for its next message (the detail is the channel).
    Channel = 1,
    /// A fragmented reliable message was left incomplete (the detail is its first reliable id).
    Fragment = 2,
}

/// Names of [`Fault`]s, by code.
pub const FAULT_KINDS: [&str; 3] = ["gap", "channel", "fragment"];

impl Fault {
    fn of(code: u8) -> Fault {
        match code {
            0 => Fault::Gap,
            1 => Fault::Channel,
            _ => Fault::Fragment,
        }
    }
}

/// Why a send entry was refused for good.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The peer is gone (or never existed).
    Gone = 0,
    /// Larger than the largest message.
    TooLarge = 1,
    /// Not a valid entry for the protocol (a channel out of range).
    Invalid = 2,
}

/// Names of [`Refusal`]s, by code.
pub const REFUSAL_REASONS: [&str; 3] = ["gone", "too-large", "invalid"];

fn reason_code(r: DisconnectReason) -> u8 {
    match r {
        DisconnectReason::Local => 0,
        DisconnectReason::Remote => 1,
        DisconnectReason::Timeout => 2,
        DisconnectReason::Refused => 3,
        DisconnectReason::Error => 4,
        DisconnectReason::TokenRequired => 5,
        DisconnectReason::NotSecure => 6,
        DisconnectReason::Secure(state) => match SECURE_FAILURES.iter().position(|s| *s == state) {
            Some(i) => SECURE_BASE + i as u8,
            None => 1,
        },
    }
}

fn reason_of(code: u8) -> DisconnectReason {
    match code {
        0 => DisconnectReason::Local,
        1 => DisconnectReason::Remote,
        2 => DisconnectReason::Timeout,
        3 => DisconnectReason::Refused,
        4 => DisconnectReason::Error,
        5 => DisconnectReason::TokenRequired,
        6 => DisconnectReason::NotSecure,
        c if (SECURE_BASE..SECURE_BASE + SECURE_FAILURES.len() as u8).contains(&c) => {
            DisconnectReason::Secure(SECURE_FAILURES[(c - SECURE_BASE) as usize])
        }
        _ => DisconnectReason::Refused,
    }
}

/// One kind of event as the addon exports it: its tag, its fixed size, and
/// each field's offset. A kind of variable size names its length field.
#[derive(Debug)]
pub struct EventLayout {
    /// Name TypeScript knows it by.
    pub name: &'static str,
    /// Its tag byte.
    pub tag: Tag,
    /// Bytes before the variable part (the whole event if there is none).
    pub fixed: usize,
    /// (field name, offset).
    pub fields: &'static [(&'static str, usize)],
}

/// Every kind of event: the source of `netLayout().events`.
pub const LAYOUT: [EventLayout; 6] = [
    EventLayout {
        name: "connected",
        tag: Tag::Connected,
        fixed: CONNECTED_ADDR,
        fields: &[
            ("peer", AT_PEER),
            ("addrLength", CONNECTED_ADDR_LENGTH),
            ("addr", CONNECTED_ADDR),
        ],
    },
    EventLayout {
        name: "disconnected",
        tag: Tag::Disconnected,
        fixed: DISCONNECTED_LEN,
        fields: &[("peer", AT_PEER), ("reason", DISCONNECTED_REASON)],
    },
    EventLayout {
        name: "message",
        tag: Tag::Message,
        fixed: MESSAGE_PAYLOAD,
        fields: &[
            ("peer", AT_PEER),
            ("channel", MESSAGE_CHANNEL),
            ("length", MESSAGE_LENGTH),
            ("payload", MESSAGE_PAYLOAD),
        ],
    },
    EventLayout {
        name: "refused",
        tag: Tag::Refused,
        fixed: REFUSED_LEN,
        fields: &[("peer", AT_PEER), ("reason", REFUSED_REASON), ("count", REFUSED_COUNT)],
    },
    EventLayout {
        name: "pending",
        tag: Tag::Pending,
        fixed: PENDING_LEN,
        fields: &[("peer", AT_PEER), ("bytes", PENDING_BYTES)],
    },
    EventLayout {
        name: "fault",
        tag: Tag::Fault,
        fixed: FAULT_LEN,
        fields: &[("peer", AT_PEER), ("kind", FAULT_KIND), ("detail", FAULT_DETAIL)],
    },
];

/// A decoded event; a message's `data` borrows the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventRef<'a> {
    /// See [`super::Event::Connected`].
    Connected {
        /// The new peer.
        peer: PeerId,
        /// Its address.
        addr: SocketAddr,
    },
    /// See [`super::Event::Disconnected`].
    Disconnected {
        /// The peer that left.
        peer: PeerId,
        /// Why.
        reason: DisconnectReason,
    },
    /// See [`super::Event::Message`]; `data` is valid only during the callback.
    Message {
        /// Sender.
        peer: PeerId,
        /// Channel.
        channel: u8,
        /// Payload.
        data: &'a [u8],
    },
    /// See [`super::Event::Fault`].
    Fault {
        /// The peer at fault.
        peer: PeerId,
        /// What it did.
        kind: Fault,
        /// Where.
        detail: u32,
    },
}

/// Pending events, encoded in [`LAYOUT`]. Delivering a message costs one copy
/// and no allocation once the buffer has grown.
#[derive(Debug, Default)]
pub(crate) struct Events {
    buf: Vec<u8>,
    /// Start of the first undrained event.
    head: usize,
}

impl Events {
    fn start(&mut self, tag: Tag, peer: PeerId) {
        self.reuse_if_drained();
        self.buf.push(tag as u8);
        self.buf.extend_from_slice(&peer.to_le_bytes());
    }

    /// Queues a message, copying its bytes.
    pub(crate) fn push_message(&mut self, peer: PeerId, channel: u8, reliable: bool, data: &[u8]) {
        self.start(Tag::Message, peer);
        self.buf.push(channel | if reliable { RELIABLE_BIT } else { 0 });
        self.buf.extend_from_slice(&(data.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(data);
    }

    /// Queues a completed handshake.
    pub(crate) fn push_connected(&mut self, peer: PeerId, addr: SocketAddr) {
        let text = addr.to_string();
        self.start(Tag::Connected, peer);
        // An IPv6 address with scope and port is at most 56 characters.
        self.buf.push(text.len() as u8);
        self.buf.extend_from_slice(text.as_bytes());
    }

    /// Queues a departure.
    pub(crate) fn push_disconnected(&mut self, peer: PeerId, reason: DisconnectReason) {
        self.start(Tag::Disconnected, peer);
        self.buf.push(reason_code(reason));
    }

    /// Queues a refusal of `count` send entries to `peer`.
    pub(crate) fn push_refused(&mut self, peer: PeerId, reason: Refusal, count: u32) {
        self.start(Tag::Refused, peer);
        self.buf.push(reason as u8);
        self.buf.extend_from_slice(&count.to_le_bytes());
    }

    /// Queues what a peer did wrong (its departure follows).
    pub(crate) fn push_fault(&mut self, peer: PeerId, kind: Fault, detail: u32) {
        self.start(Tag::Fault, peer);
        self.buf.push(kind as u8);
        self.buf.extend_from_slice(&detail.to_le_bytes());
    }

    /// Queues how many bytes of `peer`'s send entries wait.
    pub(crate) fn push_pending(&mut self, peer: PeerId, bytes: u32) {
        self.start(Tag::Pending, peer);
        self.buf.extend_from_slice(&bytes.to_le_bytes());
    }

    /// Undrained bytes.
    pub(crate) fn backlog(&self) -> usize {
        self.buf.len() - self.head
    }

    /// Whether `len` more bytes would push the backlog past `cap` (an empty log takes anything).
    pub(crate) fn over(&self, len: usize, cap: usize) -> bool {
        self.backlog() != 0 && self.backlog() + len > cap
    }

    fn u32_at(&self, p: usize) -> u32 {
        u32::from_le_bytes([self.buf[p], self.buf[p + 1], self.buf[p + 2], self.buf[p + 3]])
    }

    /// Size of the encoded event at `p`.
    fn len_at(&self, p: usize) -> usize {
        let b = &self.buf;
        match b[p] {
            t if t == Tag::Message as u8 => MESSAGE_PAYLOAD + self.u32_at(p + MESSAGE_LENGTH) as usize,
            t if t == Tag::Connected as u8 => CONNECTED_ADDR + b[p + CONNECTED_ADDR_LENGTH] as usize,
            t if t == Tag::Refused as u8 => REFUSED_LEN,
            t if t == Tag::Pending as u8 => PENDING_LEN,
            t if t == Tag::Fault as u8 => FAULT_LEN,
            _ => DISCONNECTED_LEN,
        }
    }

    /// Size of the next undrained event, if any.
    pub(crate) fn next_len(&self) -> Option<usize> {
        (self.head < self.buf.len()).then(|| self.len_at(self.head))
    }

    /// Copies as many whole events as fit into `out`, marks them drained, and returns the bytes copied.
    pub(crate) fn drain_into(&mut self, out: &mut [u8]) -> usize {
        // Usually everything fits: then there is no need to walk the events.
        let mut end = if self.backlog() <= out.len() {
            self.buf.len()
        } else {
            self.head
        };
        while end < self.buf.len() {
            let n = self.len_at(end);
            if end + n - self.head > out.len() {
                break;
            }
            end += n;
        }
        let n = end - self.head;
        out[..n].copy_from_slice(&self.buf[self.head..end]);
        self.head = end;
        self.reuse_if_drained();
        n
    }

    /// Decodes the next endpoint event and marks it drained. A drained buffer starts over at
    /// the next push (so the view returned here stays valid until then). The send path's
    /// own events ([`Tag::Refused`], [`Tag::Pending`]) are only ever drained, never decoded
    /// here: they are skipped.
    pub(crate) fn pop(&mut self) -> Option<EventRef<'_>> {
        loop {
            let p = self.head;
            let n = self.next_len()?;
            self.head = p + n;
            let tag = self.buf[p + AT_TAG];
            if tag == Tag::Refused as u8 || tag == Tag::Pending as u8 {
                continue;
            }
            let peer = self.u32_at(p + AT_PEER);
            let b = &self.buf[p..p + n];
            return Some(match tag {
                t if t == Tag::Message as u8 => EventRef::Message {
                    peer,
                    channel: b[MESSAGE_CHANNEL] & !RELIABLE_BIT,
                    data: &b[MESSAGE_PAYLOAD..],
                },
                t if t == Tag::Connected as u8 => EventRef::Connected {
                    peer,
                    addr: std::str::from_utf8(&b[CONNECTED_ADDR..])
                        .ok()
                        .and_then(|t| t.parse().ok())
                        .expect("an address this log encoded"),
                },
                t if t == Tag::Fault as u8 => EventRef::Fault {
                    peer,
                    kind: Fault::of(b[FAULT_KIND]),
                    detail: u32::from_le_bytes([
                        b[FAULT_DETAIL],
                        b[FAULT_DETAIL + 1],
                        b[FAULT_DETAIL + 2],
                        b[FAULT_DETAIL + 3],
                    ]),
                },
                _ => EventRef::Disconnected {
                    peer,
                    reason: reason_of(b[DISCONNECTED_REASON]),
                },
            });
        }
    }

    /// Starts the buffer over if everything in it was drained.
    fn reuse_if_drained(&mut self) {
        if self.head != 0 && self.head == self.buf.len() {
            self.buf.clear();
            self.head = 0;
        }
    }
}

#[cfg(test)]
mod tests;

//! Wire formats, each parsed into a type once and encoded from one (all
//! integers little-endian; `docs/net-protocol.md` has the tables):
//!
//! - the plain link's frame [`Prefix`] and its handshake packets ([`Hello`],
//!   [`Cookie`], [`Connect`], [`Accept`], [`Reject`], [`Disconnect`]);
//! - the peer's payload header ([`PayloadHeader`]: kind, flags, packet
//!   sequence and acknowledgements), the same under any link;
//! - the message commands inside a DATA payload ([`cmd`]).

pub(crate) mod cmd;
pub(crate) mod refusal;

pub(crate) use cmd::Frag;

/// Plain link: HELLO.
pub(crate) const T_HELLO: u8 = 0x71;
/// Plain link: COOKIE.
pub(crate) const T_COOKIE: u8 = 0x72;
/// Plain link: CONNECT.
pub(crate) const T_CONNECT: u8 = 0x73;
/// Plain link: ACCEPT.
pub(crate) const T_ACCEPT: u8 = 0x74;
/// Plain link: REJECT.
pub(crate) const T_REJECT: u8 = 0x75;
/// Peer payload kind (and, framed by the plain link, packet type): DATA.
pub(crate) const T_DATA: u8 = 0x76;
/// Peer payload kind: ACK (a payload without commands that asks for no acknowledgement).
pub(crate) const T_ACK: u8 = 0x77;
/// Plain link: DISCONNECT.
pub(crate) const T_DISCONNECT: u8 = 0x78;

/// Protocol version carried by HELLO.
pub(crate) const PROTOCOL_VERSION: u16 = 1;
/// Plain frame prefix: type(1) flags(1) connection id of the receiver(4).
pub(crate) const PREFIX_LEN: usize = 6;
/// HELLO and CONNECT are padded to this size; every handshake reply is smaller.
pub(crate) const HANDSHAKE_LEN: usize = 32;
/// Peer payload header: kind(1) flags(1) seq u16, ack u16, ack bits u64, reliable cumulative ack u16.
pub(crate) const PAYLOAD_HEADER_LEN: usize = 16;
/// Payload header flag: the ack fields are meaningful.
pub(crate) const FLAG_HAS_ACK: u8 = 1;
/// Payload header flag: acknowledge this packet immediately (last packet of a burst, or a probe).
pub(crate) const FLAG_ACK_NOW: u8 = 2;

#[inline]
pub(crate) fn rd16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

#[inline]
pub(crate) fn rd32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

#[inline]
pub(crate) fn rd64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The first six bytes of every plain-link packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Prefix {
    pub ty: u8,
    /// Meaningful only in framed peer payloads (their flags); 0 in handshake packets.
    pub flags: u8,
    /// The receiver's connection id (0 in HELLO, COOKIE and CONNECT).
    pub conn: u32,
}

impl Prefix {
    /// Parses the prefix; `None` when the datagram is shorter than it.
    pub(crate) fn parse(b: &[u8]) -> Option<Self> {
        Some(Prefix {
            ty: *b.first()?,
            flags: *b.get(1)?,
            conn: rd32(b, 2)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.ty);
        out.push(self.flags);
        out.extend_from_slice(&self.conn.to_le_bytes());
    }
}

fn prefix(out: &mut Vec<u8>, ty: u8, conn: u32) {
    Prefix { ty, flags: 0, conn }.encode(out);
}

/// Client → listener: "I would like to connect", padded to [`HANDSHAKE_LEN`] so a
/// listener's reply is never larger than what provoked it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hello {
    pub version: u16,
    pub nonce: u64,
}

impl Hello {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        prefix(out, T_HELLO, 0);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.nonce.to_le_bytes());
        out.resize(HANDSHAKE_LEN, 0);
    }

    /// `None` when shorter than [`HANDSHAKE_LEN`].
    pub(crate) fn parse(b: &[u8]) -> Option<Self> {
        if b.len() < HANDSHAKE_LEN {
            return None;
        }
        Some(Hello {
            version: rd16(b, 6)?,
            nonce: rd64(b, 8)?,
        })
    }
}

/// Listener → client: a stateless cookie, `mac` over (client address, nonce, `ts`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cookie {
    pub nonce: u64,
    /// Coarse time the cookie was made (seconds).
    pub ts: u32,
    pub mac: u64,
}

impl Cookie {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        prefix(out, T_COOKIE, 0);
        out.extend_from_slice(&self.nonce.to_le_bytes());
        out.extend_from_slice(&self.ts.to_le_bytes());
        out.extend_from_slice(&self.mac.to_le_bytes());
    }

    pub(crate) fn parse(b: &[u8]) -> Option<Self> {
        Some(Cookie {
            nonce: rd64(b, 6)?,
            ts: rd32(b, 14)?,
            mac: rd64(b, 18)?,
        })
    }
}

/// Client → listener: the cookie echoed, with the client's connection id; padded to [`HANDSHAKE_LEN`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Connect {
    pub cookie: Cookie,
    pub client_conn: u32,
}

impl Connect {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let c = &self.cookie;
        prefix(out, T_CONNECT, 0);
        out.extend_from_slice(&c.nonce.to_le_bytes());
        out.extend_from_slice(&c.ts.to_le_bytes());
        out.extend_from_slice(&c.mac.to_le_bytes());
        out.extend_from_slice(&self.client_conn.to_le_bytes());
        out.resize(HANDSHAKE_LEN, 0);
    }

    /// `None` when shorter than [`HANDSHAKE_LEN`].
    pub(crate) fn parse(b: &[u8]) -> Option<Self> {
        if b.len() < HANDSHAKE_LEN {
            return None;
        }
        Some(Connect {
            cookie: Cookie::parse(b)?,
            client_conn: rd32(b, 26)?,
        })
    }
}

/// Listener → client: the connection is made; `server_conn` is the listener's connection id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Accept {
    /// The client's connection id (the receiver's, as in every prefix).
    pub conn: u32,
    pub nonce: u64,
    pub server_conn: u32,
}

impl Accept {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        prefix(out, T_ACCEPT, self.conn);
        out.extend_from_slice(&self.nonce.to_le_bytes());
        out.extend_from_slice(&self.server_conn.to_le_bytes());
    }

    pub(crate) fn parse(b: &[u8]) -> Option<Self> {
        Some(Accept {
            conn: rd32(b, 2)?,
            nonce: rd64(b, 6)?,
            server_conn: rd32(b, 14)?,
        })
    }
}

/// Listener → client: refused (the listener is full).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reject {
    /// The client's connection id.
    pub conn: u32,
    pub nonce: u64,
}

impl Reject {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        prefix(out, T_REJECT, self.conn);
        out.extend_from_slice(&self.nonce.to_le_bytes());
    }

    pub(crate) fn parse(b: &[u8]) -> Option<Self> {
        Some(Reject {
            conn: rd32(b, 2)?,
            nonce: rd64(b, 6)?,
        })
    }
}

/// Either way: goodbye.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Disconnect {
    /// The receiver's connection id.
    pub conn: u32,
}

impl Disconnect {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        prefix(out, T_DISCONNECT, self.conn);
    }
}

/// A received peer payload as the link hands it over: its kind and flags (which a link may
/// carry apart from the rest, as the plain one does) and the bytes after them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Payload<'a> {
    pub kind: u8,
    pub flags: u8,
    pub rest: &'a [u8],
}

/// The header of every peer payload (DATA or ACK), whatever link carries it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PayloadHeader {
    /// [`T_DATA`] or [`T_ACK`].
    pub kind: u8,
    pub flags: u8,
    /// Packet sequence number (DATA; 0 in ACK).
    pub seq: u16,
    /// Newest packet sequence number received from the peer.
    pub ack: u16,
    /// Bit `i` set: packet `ack - 1 - i` was received.
    pub ack_bits: u64,
    /// Low 16 bits of the receiver's reliable base: every reliable id below it was received.
    pub rel_cum: u16,
}

impl PayloadHeader {
    /// Writes the header into the first [`PAYLOAD_HEADER_LEN`] bytes of `b`.
    pub(crate) fn write(&self, b: &mut [u8]) {
        b[0] = self.kind;
        b[1] = self.flags;
        b[2..4].copy_from_slice(&self.seq.to_le_bytes());
        b[4..6].copy_from_slice(&self.ack.to_le_bytes());
        b[6..14].copy_from_slice(&self.ack_bits.to_le_bytes());
        b[14..16].copy_from_slice(&self.rel_cum.to_le_bytes());
    }

    /// Parses the header of a received payload; returns it and the commands. `None` if truncated.
    pub(crate) fn parse<'a>(p: &Payload<'a>) -> Option<(Self, &'a [u8])> {
        let rest = p.rest;
        let h = PayloadHeader {
            kind: p.kind,
            flags: p.flags,
            seq: rd16(rest, 0)?,
            ack: rd16(rest, 2)?,
            ack_bits: rd64(rest, 4)?,
            rel_cum: rd16(rest, 12)?,
        };
        Some((h, &rest[PAYLOAD_HEADER_LEN - 2..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_round_trip_every_handshake_packet_at_its_documented_size() {
        let mut b = Vec::new();
        let hello = Hello {
            version: PROTOCOL_VERSION,
            nonce: 0x0102_0304_0506_0708,
        };
        hello.encode(&mut b);
        assert_eq!((b.len(), b[0]), (HANDSHAKE_LEN, T_HELLO));
        assert_eq!(Hello::parse(&b), Some(hello));
        assert_eq!(Hello::parse(&b[..HANDSHAKE_LEN - 1]), None, "a short HELLO is not one");

        let cookie = Cookie {
            nonce: 7,
            ts: 1234,
            mac: u64::MAX - 3,
        };
        b.clear();
        cookie.encode(&mut b);
        assert_eq!((b.len(), b[0]), (26, T_COOKIE));
        assert_eq!(Cookie::parse(&b), Some(cookie));
        assert_eq!(Cookie::parse(&b[..25]), None);

        let connect = Connect {
            cookie,
            client_conn: 99,
        };
        b.clear();
        connect.encode(&mut b);
        assert_eq!((b.len(), b[0]), (HANDSHAKE_LEN, T_CONNECT));
        assert_eq!(Connect::parse(&b), Some(connect));
        assert_eq!(Connect::parse(&b[..31]), None);

        let accept = Accept {
            conn: 99,
            nonce: 7,
            server_conn: 5,
        };
        b.clear();
        accept.encode(&mut b);
        assert_eq!((b.len(), b[0]), (18, T_ACCEPT));
        assert_eq!(Prefix::parse(&b).map(|p| p.conn), Some(99));
        assert_eq!(Accept::parse(&b), Some(accept));
        assert_eq!(Accept::parse(&b[..17]), None);

        let reject = Reject { conn: 99, nonce: 7 };
        b.clear();
        reject.encode(&mut b);
        assert_eq!((b.len(), b[0]), (14, T_REJECT));
        assert_eq!(Reject::parse(&b), Some(reject));

        b.clear();
        Disconnect { conn: 42 }.encode(&mut b);
        assert_eq!(
            Prefix::parse(&b),
            Some(Prefix {
                ty: T_DISCONNECT,
                flags: 0,
                conn: 42
            })
        );
        assert_eq!(Prefix::parse(&b[..5]), None);
    }

    #[test]
    fn should_round_trip_a_payload_header_given_apart_from_its_kind_and_flags() {
        let h = PayloadHeader {
            kind: T_DATA,
            flags: FLAG_HAS_ACK | FLAG_ACK_NOW,
            seq: 65_535,
            ack: 3,
            ack_bits: 0x8000_0000_0000_0001,
            rel_cum: 12_345,
        };
        let mut b = [0u8; PAYLOAD_HEADER_LEN + 3];
        h.write(&mut b);
        b[PAYLOAD_HEADER_LEN..].copy_from_slice(&[1, 2, 3]);
        let p = |rest| Payload {
            kind: b[0],
            flags: b[1],
            rest,
        };
        let (back, cmds) = PayloadHeader::parse(&p(&b[2..])).expect("parses");
        assert_eq!((back, cmds), (h, &[1u8, 2, 3][..]));
        assert_eq!(PayloadHeader::parse(&p(&b[2..PAYLOAD_HEADER_LEN - 1])), None);
    }
}

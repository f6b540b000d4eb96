//! The two refusals between the link kinds: what a secure (netcode) listener
//! answers a plain handshake, and what a plain listener answers a netcode
//! connection request. Neither side can speak the other's protocol, so each
//! says in one small plain-link packet why it will not, and the client fails
//! its attempt with that reason instead of timing out.
//!
//! Both are stateless and smaller than what they answer (a 36-byte HELLO, a
//! 1078-byte connection request), and both echo something only a party that
//! saw the request knows (the HELLO's nonce; the request's token MAC), so an
//! off-path sender cannot forge one to end somebody's connection attempt.

use super::{prefix, rd64, PREFIX_LEN};
use crate::crypto::TAG_BYTES;

/// Secure listener → plain client: "this listener takes connect tokens only".
pub(crate) const T_TOKEN_REQUIRED: u8 = 0x7e;
/// Plain listener → netcode client: "this listener takes no connect tokens".
pub(crate) const T_NO_TOKENS: u8 = 0x7f;

/// Size of a [`TokenRequired`] packet.
pub(crate) const TOKEN_REQUIRED_LEN: usize = PREFIX_LEN + 8;
/// Size of a [`NoTokens`] packet.
pub(crate) const NO_TOKENS_LEN: usize = PREFIX_LEN + TAG_BYTES;

/// Answers a HELLO at a secure listener; echoes the HELLO's nonce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TokenRequired {
    pub nonce: u64,
}

impl TokenRequired {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        prefix(out, T_TOKEN_REQUIRED, 0);
        out.extend_from_slice(&self.nonce.to_le_bytes());
    }

    /// `None` unless exactly [`TOKEN_REQUIRED_LEN`] bytes of this type.
    pub(crate) fn parse(b: &[u8]) -> Option<Self> {
        if b.len() != TOKEN_REQUIRED_LEN || b[0] != T_TOKEN_REQUIRED {
            return None;
        }
        Some(TokenRequired {
            nonce: rd64(b, PREFIX_LEN)?,
        })
    }
}

/// Answers a netcode connection request at a plain listener; echoes the
/// request's last 16 bytes (the MAC of its encrypted private token).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NoTokens {
    pub tag: [u8; TAG_BYTES],
}

impl NoTokens {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        prefix(out, T_NO_TOKENS, 0);
        out.extend_from_slice(&self.tag);
    }

    /// `None` unless exactly [`NO_TOKENS_LEN`] bytes of this type.
    pub(crate) fn parse(b: &[u8]) -> Option<Self> {
        if b.len() != NO_TOKENS_LEN || b[0] != T_NO_TOKENS {
            return None;
        }
        Some(NoTokens {
            tag: b[PREFIX_LEN..].try_into().ok()?,
        })
    }

    /// The refusal of a netcode connection request `b`, if `b` is one (its
    /// size, packet type 0 and version info): checked before anything else.
    pub(crate) fn answering(b: &[u8]) -> Option<Self> {
        use crate::netcode::{REQUEST_PACKET_BYTES, VERSION_INFO};
        if b.len() != REQUEST_PACKET_BYTES || b[0] != 0 || &b[1..14] != VERSION_INFO {
            return None;
        }
        Some(NoTokens {
            tag: b[b.len() - TAG_BYTES..].try_into().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::packet::{Hello, HANDSHAKE_LEN, PROTOCOL_VERSION};

    #[test]
    fn should_answer_a_hello_and_a_request_with_less_than_they_are() {
        let mut hello = Vec::new();
        Hello {
            version: PROTOCOL_VERSION,
            nonce: 9,
        }
        .encode(&mut hello);
        let mut b = Vec::new();
        TokenRequired { nonce: 9 }.encode(&mut b);
        assert!(b.len() < hello.len() && hello.len() == HANDSHAKE_LEN);
        assert_eq!(TokenRequired::parse(&b), Some(TokenRequired { nonce: 9 }));

        let mut req = vec![0u8; crate::netcode::REQUEST_PACKET_BYTES];
        req[1..14].copy_from_slice(crate::netcode::VERSION_INFO);
        let n = req.len();
        req[n - 16..].copy_from_slice(&[5; 16]);
        let no = NoTokens::answering(&req).expect("a request");
        assert_eq!(no.tag, [5; 16]);
        let mut b = Vec::new();
        no.encode(&mut b);
        assert!(b.len() < req.len());
        assert_eq!(NoTokens::parse(&b), Some(no));
    }

    #[test]
    fn should_take_nothing_else_for_a_request_or_a_refusal() {
        let mut req = vec![0u8; crate::netcode::REQUEST_PACKET_BYTES];
        req[1..14].copy_from_slice(crate::netcode::VERSION_INFO);
        assert!(NoTokens::answering(&req[..req.len() - 1]).is_none(), "a byte short");
        req[5] ^= 1;
        assert!(NoTokens::answering(&req).is_none(), "another version");
        let mut b = Vec::new();
        TokenRequired { nonce: 1 }.encode(&mut b);
        for cut in 0..b.len() {
            assert!(TokenRequired::parse(&b[..cut]).is_none(), "cut at {cut}");
        }
        b.push(0);
        assert!(TokenRequired::parse(&b).is_none(), "a byte long");
        let mut b = Vec::new();
        NoTokens { tag: [1; 16] }.encode(&mut b);
        b[0] = T_TOKEN_REQUIRED;
        assert!(NoTokens::parse(&b).is_none(), "another type");
    }
}

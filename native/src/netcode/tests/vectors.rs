//! Known answers: `test/fixtures/netcode/vectors.txt`, produced by the
//! reference implementation (see `/work/shared/netcode/README.md` for its
//! inputs). tsage reads each to the documented fields and writes the same bytes.

use super::*;
use crate::crypto::Aead;
use crate::netcode::challenge::ChallengeToken;
use crate::netcode::packet::{read_packet, sequence_bytes, write_packet, Allowed, Packet};
use crate::netcode::token::{decrypt_private, encrypt_private};

const VECTORS: &str = include_str!("../../../../test/fixtures/netcode/vectors.txt");
const VECTOR_PROTOCOL: u64 = 0x1234_5678_90AB_CDEF;

fn vector_key() -> Key {
    Key::from_bytes(std::array::from_fn(|i| i as u8))
}

fn line(tag: &str) -> Vec<u8> {
    let l = VECTORS.lines().find(|l| l.starts_with(tag)).expect("vector present");
    let fields: Vec<&str> = l.split_whitespace().collect();
    let bytes = hex(fields[2]);
    assert_eq!(bytes.len(), fields[1].parse::<usize>().unwrap());
    bytes
}

/// (sequence, bytes) of each keep-alive line.
fn packets() -> Vec<(u64, Vec<u8>)> {
    let v: Vec<(u64, Vec<u8>)> = VECTORS
        .lines()
        .filter(|l| l.starts_with("PKT "))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let bytes = hex(f[3]);
            assert_eq!(bytes.len(), f[2].parse::<usize>().unwrap());
            (f[1].parse().unwrap(), bytes)
        })
        .collect();
    assert_eq!(v.len(), 10, "ten keep-alive vectors");
    v
}

fn vector_user_data() -> [u8; 256] {
    std::array::from_fn(|i| 255 - i as u8)
}

#[test]
fn should_read_the_reference_public_token_to_its_documented_fields() {
    let t = ConnectToken::read(&line("TOKEN")).unwrap();
    assert_eq!(t.protocol_id, VECTOR_PROTOCOL);
    assert_eq!(t.expire_timestamp - t.create_timestamp, 45);
    assert_eq!(t.timeout_seconds, 17);
    assert_eq!(t.server_addresses, vec![addr("127.0.0.1:40000"), addr("[::1]:40001")]);
    assert_ne!(t.client_to_server_key, t.server_to_client_key);
}

#[test]
fn should_decrypt_the_reference_private_token_to_its_documented_fields() {
    let t = ConnectToken::read(&line("TOKEN")).unwrap();
    let mut buf = *t.private_data;
    decrypt_private(
        &mut Aead::new().unwrap(),
        &mut buf,
        t.protocol_id,
        t.expire_timestamp,
        &t.nonce,
        &vector_key(),
    )
    .unwrap();
    let p = PrivateToken::read(&buf).unwrap();
    assert_eq!(p.client_id, 0x1122_3344_5566_7788);
    assert_eq!(p.timeout_seconds, 17);
    assert_eq!(p.server_addresses, t.server_addresses);
    assert_eq!(p.client_to_server_key, t.client_to_server_key);
    assert_eq!(p.server_to_client_key, t.server_to_client_key);
    assert_eq!(p.user_data.bytes(), &vector_user_data());
}

#[test]
fn should_write_the_reference_token_bytes_again() {
    let bytes = line("TOKEN");
    let t = ConnectToken::read(&bytes).unwrap();
    let mut aead = Aead::new().unwrap();
    let mut plain = *t.private_data;
    decrypt_private(
        &mut aead,
        &mut plain,
        t.protocol_id,
        t.expire_timestamp,
        &t.nonce,
        &vector_key(),
    )
    .unwrap();
    let p = PrivateToken::read(&plain).unwrap();
    let mut again = [0xffu8; CONNECT_TOKEN_PRIVATE_BYTES];
    p.write(&mut again).unwrap();
    assert_eq!(
        &again[..CONNECT_TOKEN_PRIVATE_BYTES - 16],
        &plain[..CONNECT_TOKEN_PRIVATE_BYTES - 16]
    );
    encrypt_private(
        &mut aead,
        &mut again,
        t.protocol_id,
        t.expire_timestamp,
        &t.nonce,
        &vector_key(),
    )
    .unwrap();
    assert_eq!(again, *t.private_data, "same nonce, same private bytes");
    let mut public = [0xffu8; CONNECT_TOKEN_BYTES];
    t.write(&mut public).unwrap();
    assert_eq!(public.as_slice(), bytes.as_slice(), "same public bytes");
}

#[test]
fn should_refuse_the_reference_token_under_another_key_or_expiry() {
    let t = ConnectToken::read(&line("TOKEN")).unwrap();
    let mut aead = Aead::new().unwrap();
    let mut wrong = vector_key();
    wrong.bytes_mut()[0] ^= 1;
    let mut buf = *t.private_data;
    assert!(decrypt_private(&mut aead, &mut buf, t.protocol_id, t.expire_timestamp, &t.nonce, &wrong).is_err());
    let mut buf = *t.private_data;
    let later = t.expire_timestamp + 1;
    assert!(decrypt_private(&mut aead, &mut buf, t.protocol_id, later, &t.nonce, &vector_key()).is_err());
    let mut buf = *t.private_data;
    assert!(decrypt_private(
        &mut aead,
        &mut buf,
        t.protocol_id ^ 1,
        t.expire_timestamp,
        &t.nonce,
        &vector_key()
    )
    .is_err());
}

#[test]
fn should_decrypt_every_reference_keep_alive_to_its_fields() {
    let mut aead = Aead::new().unwrap();
    let mut scratch = [0u8; MAX_PACKET_BYTES];
    for (seq, bytes) in packets() {
        assert_eq!(
            (bytes[0] >> 4) as usize,
            sequence_bytes(seq),
            "minimal sequence for {seq}"
        );
        assert_eq!(bytes[0] & 0xf, 4, "keep-alive type");
        let (got, p) = read_packet(
            &mut aead,
            &bytes,
            &vector_key(),
            VECTOR_PROTOCOL,
            Allowed::CLIENT,
            None,
            &mut scratch,
        )
        .unwrap();
        assert_eq!(got, seq);
        assert_eq!(
            p,
            Packet::KeepAlive {
                client_index: 3,
                max_clients: 32
            }
        );
    }
}

#[test]
fn should_write_every_reference_keep_alive_byte_for_byte() {
    let mut aead = Aead::new().unwrap();
    for (seq, bytes) in packets() {
        let mut out = [0u8; MAX_PACKET_BYTES];
        let p = Packet::KeepAlive {
            client_index: 3,
            max_clients: 32,
        };
        let n = write_packet(&mut aead, &p, seq, &vector_key(), VECTOR_PROTOCOL, &mut out).unwrap();
        assert_eq!(&out[..n], bytes.as_slice(), "sequence {seq}");
    }
}

#[test]
fn should_write_the_reference_challenge_token_plaintext() {
    let bytes = line("CHALLENGE");
    let ud: [u8; 256] = std::array::from_fn(|i| i as u8 ^ 0x5a);
    let c = ChallengeToken {
        client_id: 0x0102_0304_0506_0708,
        user_data: crate::crypto::Secret::from_bytes(ud),
    };
    let mut out = [0xffu8; CHALLENGE_TOKEN_BYTES];
    c.write(&mut out);
    assert_eq!(out.as_slice(), bytes.as_slice());
    let back = ChallengeToken::read(&out);
    assert_eq!(back.client_id, 0x0102_0304_0506_0708);
    assert_eq!(back.user_data.bytes(), &ud);
}

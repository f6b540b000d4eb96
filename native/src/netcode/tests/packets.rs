//! Packet encoding, the reader's checks in the standard's order, the replay
//! window, and the challenge token's encryption.

use super::*;
use crate::crypto::Aead;
use crate::netcode::challenge::{decrypt_challenge, encrypt_challenge, ChallengeToken};
use crate::netcode::packet::{read_packet, read_request, sequence_bytes, write_packet, write_request};
use crate::netcode::packet::{Allowed, Packet, RequestPacket};
use crate::netcode::replay::ReplayProtection;

fn key() -> Key {
    Key::from_bytes([0x42; 32])
}

fn write(p: &Packet<'_>, seq: u64) -> Vec<u8> {
    let mut out = [0u8; MAX_PACKET_BYTES];
    let n = write_packet(&mut Aead::new().unwrap(), p, seq, &key(), PROTOCOL, &mut out).unwrap();
    out[..n].to_vec()
}

fn read(d: &[u8], allowed: Allowed, replay: Option<&mut ReplayProtection>) -> Result<(u64, String), DropReason> {
    let mut scratch = [0u8; MAX_PACKET_BYTES];
    read_packet(
        &mut Aead::new().unwrap(),
        d,
        &key(),
        PROTOCOL,
        allowed,
        replay,
        &mut scratch,
    )
    .map(|(s, p)| (s, format!("{p:?}")))
}

const CHALLENGE: [u8; CHALLENGE_TOKEN_BYTES] = [0x17; CHALLENGE_TOKEN_BYTES];

fn every_packet() -> Vec<(Packet<'static>, Allowed)> {
    vec![
        (Packet::Denied, Allowed::CLIENT),
        (
            Packet::Challenge {
                sequence: 9,
                token: &CHALLENGE,
            },
            Allowed::CLIENT,
        ),
        (
            Packet::Response {
                sequence: 9,
                token: &CHALLENGE,
            },
            Allowed::SERVER,
        ),
        (
            Packet::KeepAlive {
                client_index: 1,
                max_clients: 2,
            },
            Allowed::SERVER,
        ),
        (Packet::Payload(&[1, 2, 3]), Allowed::SERVER),
        (Packet::Payload(&[0xee; MAX_PAYLOAD_BYTES]), Allowed::CLIENT),
        (Packet::Disconnect, Allowed::SERVER),
    ]
}

#[test]
fn should_encode_the_sequence_in_the_fewest_bytes() {
    let cases = [
        (0, 1),
        (1, 1),
        (255, 1),
        (256, 2),
        (0xffff, 2),
        (0x1_0000, 3),
        (1 << 56, 8),
        (u64::MAX, 8),
    ];
    for (seq, n) in cases {
        assert_eq!(sequence_bytes(seq), n, "{seq}");
        let d = write(&Packet::Disconnect, seq);
        assert_eq!(d.len(), 1 + n + 16);
        assert_eq!(d[0], (n as u8) << 4 | 6);
        assert_eq!(read(&d, Allowed::SERVER, None).unwrap().0, seq);
    }
}

#[test]
fn should_read_back_every_packet_type_it_writes() {
    for (p, allowed) in every_packet() {
        let d = write(&p, 1000);
        let (seq, got) = read(&d, allowed, None).unwrap();
        assert_eq!((seq, got), (1000, format!("{p:?}")));
    }
}

#[test]
fn should_fail_every_packet_with_any_bit_flipped() {
    for (p, allowed) in every_packet() {
        let d = write(&p, 70_000);
        for bit in 0..d.len() * 8 {
            let mut bad = d.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(
                read(&bad, allowed, None).is_err(),
                "{p:?}: bit {bit} flipped was accepted"
            );
        }
    }
}

#[test]
fn should_refuse_bad_packets_in_the_standards_order() {
    let ka = write(
        &Packet::KeepAlive {
            client_index: 0,
            max_clients: 0,
        },
        5,
    );
    assert_eq!(read(&ka[..17], Allowed::SERVER, None), Err(DropReason::TooSmall));
    for t in 7..16u8 {
        let mut d = ka.clone();
        d[0] = 0x10 | t;
        assert_eq!(read(&d, Allowed::SERVER, None), Err(DropReason::BadPacketType));
    }
    let ch = write(
        &Packet::Challenge {
            sequence: 1,
            token: &CHALLENGE,
        },
        5,
    );
    assert_eq!(read(&ch, Allowed::SERVER, None), Err(DropReason::PacketTypeNotAllowed));
    assert_eq!(
        read(&write(&Packet::Denied, 5), Allowed::SERVER, None),
        Err(DropReason::PacketTypeNotAllowed)
    );
    let resp = write(
        &Packet::Response {
            sequence: 1,
            token: &CHALLENGE,
        },
        5,
    );
    assert_eq!(
        read(&resp, Allowed::CLIENT, None),
        Err(DropReason::PacketTypeNotAllowed)
    );
    let mut zero_type = ka.clone();
    zero_type[0] = 0x10;
    assert_eq!(
        read(&zero_type, Allowed::SERVER, None),
        Err(DropReason::PacketTypeNotAllowed)
    );
    for hi in [0u8, 9, 15] {
        let mut d = ka.clone();
        d[0] = hi << 4 | 4;
        assert_eq!(read(&d, Allowed::SERVER, None), Err(DropReason::BadSequenceBytes));
    }
    let mut long_seq = ka[..20].to_vec();
    long_seq[0] = 0x84;
    assert_eq!(read(&long_seq, Allowed::SERVER, None), Err(DropReason::TooSmall));
    let mut extra = ka.clone();
    extra.push(0);
    assert_eq!(read(&extra, Allowed::SERVER, None), Err(DropReason::BadSize));
    let mut empty_payload = write(&Packet::Disconnect, 5);
    empty_payload[0] = 0x15;
    assert_eq!(read(&empty_payload, Allowed::SERVER, None), Err(DropReason::BadSize));
    let mut big = vec![0x15, 5];
    big.resize(2 + MAX_PAYLOAD_BYTES + 1 + 16, 0);
    assert_eq!(read(&big, Allowed::SERVER, None), Err(DropReason::BadSize));
    let mut forged = ka.clone();
    forged[3] ^= 1;
    assert_eq!(read(&forged, Allowed::SERVER, None), Err(DropReason::Unauthentic));
}

#[test]
fn should_refuse_a_payload_outside_1_to_1200_bytes_when_writing() {
    let mut out = [0u8; MAX_PACKET_BYTES + 10];
    let mut aead = Aead::new().unwrap();
    for n in [0, MAX_PAYLOAD_BYTES + 1] {
        let p = vec![1u8; n];
        let r = write_packet(&mut aead, &Packet::Payload(&p), 0, &key(), PROTOCOL, &mut out);
        assert_eq!(r, Err(packet::WriteError::PayloadSize(n)));
    }
    let r = write_packet(
        &mut aead,
        &Packet::Payload(&[1; 100]),
        0,
        &key(),
        PROTOCOL,
        &mut out[..50],
    );
    assert_eq!(r, Err(packet::WriteError::BufferTooSmall));
}

#[test]
fn should_drop_replayed_and_too_old_packets_but_accept_late_ones_in_the_window() {
    let mut rp = ReplayProtection::default();
    let p = Packet::Payload(b"x");
    for seq in [10, 12, 11] {
        assert!(
            read(&write(&p, seq), Allowed::SERVER, Some(&mut rp)).is_ok(),
            "{seq} is new"
        );
    }
    for seq in [10, 11, 12] {
        assert_eq!(
            read(&write(&p, seq), Allowed::SERVER, Some(&mut rp)),
            Err(DropReason::Replayed)
        );
    }
    assert!(read(&write(&p, 300), Allowed::SERVER, Some(&mut rp)).is_ok());
    assert!(
        read(&write(&p, 45), Allowed::SERVER, Some(&mut rp)).is_ok(),
        "300 - 45 < 256"
    );
    assert_eq!(
        read(&write(&p, 44), Allowed::SERVER, Some(&mut rp)),
        Err(DropReason::Replayed),
        "300 - 44 = 256"
    );
    assert!(read(&write(&p, u64::MAX), Allowed::SERVER, Some(&mut rp)).is_ok());
    assert_eq!(
        read(&write(&p, u64::MAX), Allowed::SERVER, Some(&mut rp)),
        Err(DropReason::Replayed)
    );
    assert!(read(&write(&p, u64::MAX - 255), Allowed::SERVER, Some(&mut rp)).is_ok());
    assert_eq!(
        read(&write(&p, u64::MAX - 256), Allowed::SERVER, Some(&mut rp)),
        Err(DropReason::Replayed)
    );
}

#[test]
fn should_not_let_a_forged_packet_move_the_replay_window() {
    let mut rp = ReplayProtection::default();
    let mut forged = write(&Packet::Payload(b"x"), 1 << 40);
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert_eq!(
        read(&forged, Allowed::SERVER, Some(&mut rp)),
        Err(DropReason::Unauthentic)
    );
    assert!(read(&write(&Packet::Payload(b"x"), 3), Allowed::SERVER, Some(&mut rp)).is_ok());
    let mut replayed_and_forged = write(&Packet::Payload(b"x"), 3);
    replayed_and_forged[4] ^= 1;
    assert_eq!(
        read(&replayed_and_forged, Allowed::SERVER, Some(&mut rp)),
        Err(DropReason::Replayed)
    );
}

#[test]
fn should_not_replay_protect_handshake_packets() {
    let mut rp = ReplayProtection::default();
    let r = write(
        &Packet::Response {
            sequence: 1,
            token: &CHALLENGE,
        },
        2,
    );
    assert!(read(&r, Allowed::SERVER, Some(&mut rp)).is_ok());
    assert!(
        read(&r, Allowed::SERVER, Some(&mut rp)).is_ok(),
        "responses are resent as they are"
    );
}

fn request() -> Vec<u8> {
    let nonce = [3u8; 24];
    let token = [9u8; CONNECT_TOKEN_PRIVATE_BYTES];
    let mut out = [0u8; REQUEST_PACKET_BYTES];
    let p = RequestPacket {
        protocol_id: PROTOCOL,
        expire_timestamp: UNIX + 10,
        nonce: &nonce,
        token: &token,
    };
    assert_eq!(write_request(&p, &mut out), Some(REQUEST_PACKET_BYTES));
    assert_eq!(write_request(&p, &mut [0u8; 1000]), None);
    out.to_vec()
}

#[test]
fn should_check_a_request_for_size_version_protocol_and_expiry_in_that_order() {
    let r = request();
    assert_eq!(REQUEST_PACKET_BYTES, 1078);
    let ok = read_request(&r, PROTOCOL, UNIX).unwrap();
    assert_eq!((ok.expire_timestamp, ok.nonce[0], ok.token[0]), (UNIX + 10, 3, 9));
    assert_eq!(
        read_request(&r[..1077], PROTOCOL, UNIX).err(),
        Some(DropReason::RequestBadSize)
    );
    let mut bad_version = r.clone();
    bad_version[12] = b'1';
    bad_version[14] ^= 1;
    assert_eq!(
        read_request(&bad_version, PROTOCOL, u64::MAX).err(),
        Some(DropReason::RequestBadVersion)
    );
    assert_eq!(
        read_request(&r, PROTOCOL + 1, u64::MAX).err(),
        Some(DropReason::RequestWrongProtocol)
    );
    assert_eq!(
        read_request(&r, PROTOCOL, UNIX + 10).err(),
        Some(DropReason::RequestTokenExpired)
    );
}

#[test]
fn should_encrypt_challenge_tokens_so_only_the_same_key_and_sequence_open_them() {
    let mut aead = Aead::new().unwrap();
    let c = ChallengeToken {
        client_id: 77,
        user_data: crate::crypto::Secret::from_bytes([5; 256]),
    };
    let mut buf = [0u8; CHALLENGE_TOKEN_BYTES];
    c.write(&mut buf);
    encrypt_challenge(&mut aead, &mut buf, 12, &key()).unwrap();
    let sealed = buf;
    assert!(decrypt_challenge(&mut aead, &mut buf.clone(), 13, &key()).is_err());
    assert!(decrypt_challenge(&mut aead, &mut buf.clone(), 12, &Key::from_bytes([1; 32])).is_err());
    for bit in (0..CHALLENGE_TOKEN_BYTES * 8).step_by(7) {
        let mut b = sealed;
        b[bit / 8] ^= 1 << (bit % 8);
        assert!(decrypt_challenge(&mut aead, &mut b, 12, &key()).is_err(), "bit {bit}");
    }
    decrypt_challenge(&mut aead, &mut buf, 12, &key()).unwrap();
    let back = ChallengeToken::read(&buf);
    assert_eq!((back.client_id, back.user_data.bytes()[255]), (77, 5));
}

#[test]
fn should_seal_a_payload_in_place_to_the_same_bytes_as_write_packet_at_every_sequence_width() {
    use crate::netcode::packet::{seal_payload_in_place, PAYLOAD_HEADROOM};
    let mut aead = Aead::new().unwrap();
    let payload: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
    for width in 1..=8u32 {
        let seq = if width == 1 { 5 } else { 1u64 << (8 * (width - 1)) };
        for headroom in [PAYLOAD_HEADROOM, PAYLOAD_HEADROOM + 3] {
            let mut dg = vec![0xee; headroom];
            dg.extend_from_slice(&payload);
            seal_payload_in_place(&mut aead, &mut dg, headroom, seq, &key(), PROTOCOL).unwrap();
            assert_eq!(
                dg,
                write(&Packet::Payload(&payload), seq),
                "sequence {seq}, headroom {headroom}"
            );
            assert_eq!(dg.len(), 1 + width as usize + payload.len() + 16);
        }
    }
}

#[test]
fn should_refuse_to_seal_an_empty_or_oversized_payload_or_too_little_headroom() {
    use crate::netcode::packet::{seal_payload_in_place, WriteError, PAYLOAD_HEADROOM};
    let mut aead = Aead::new().unwrap();
    for (headroom, len) in [
        (PAYLOAD_HEADROOM, 0),
        (PAYLOAD_HEADROOM, MAX_PAYLOAD_BYTES + 1),
        (8, 10),
    ] {
        let mut dg = vec![0u8; headroom + len];
        let r = seal_payload_in_place(&mut aead, &mut dg, headroom, 1, &key(), PROTOCOL);
        assert_eq!(
            r,
            Err(WriteError::PayloadSize(len)),
            "headroom {headroom}, length {len}"
        );
        assert_eq!(dg.len(), headroom + len, "left as it was");
    }
}

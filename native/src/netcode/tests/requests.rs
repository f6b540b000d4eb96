//! The server's handling of connection requests and responses: each refusal
//! the standard lists, in its order, and what a refusal costs (at most one
//! token decryption, no reply larger than the request, no state kept).

use super::*;
use crate::crypto::Aead;
use crate::netcode::packet::{write_packet, write_request, Packet, RequestPacket};
use crate::netcode::token::encrypt_private;

#[test]
fn should_refuse_a_server_with_no_slots_or_too_many() {
    for n in [0, MAX_CLIENTS + 1] {
        let cfg = ServerConfig {
            protocol_id: 1,
            private_key: private_key(),
            public_address: server_addr(),
            max_clients: n,
        };
        assert_eq!(Server::new(cfg).err(), Some(ServerError::BadMaxClients(n)));
    }
}

#[test]
fn should_ignore_a_request_of_the_wrong_size() {
    let mut s = server(4);
    let req = request_for(&token(&Spec::default()));
    refused(
        &mut s,
        c(1),
        &req[..REQUEST_PACKET_BYTES - 1],
        DropReason::RequestBadSize,
    );
    refused(
        &mut s,
        c(1),
        &[req.clone(), vec![0]].concat(),
        DropReason::RequestBadSize,
    );
    refused(&mut s, c(1), &[0], DropReason::RequestBadSize);
    assert_eq!(s.stats().token_decryptions, 0);
}

#[test]
fn should_ignore_a_request_with_the_wrong_version() {
    let mut s = server(4);
    let mut req = request_for(&token(&Spec::default()));
    req[12] = b'0';
    refused(&mut s, c(1), &req, DropReason::RequestBadVersion);
    assert_eq!(s.stats().token_decryptions, 0);
}

#[test]
fn should_ignore_a_request_for_another_protocol_id() {
    let mut s = server(4);
    let req = request_for(&token(&Spec {
        protocol_id: PROTOCOL + 1,
        ..Spec::default()
    }));
    refused(&mut s, c(1), &req, DropReason::RequestWrongProtocol);
    assert_eq!(s.stats().token_decryptions, 0);
}

#[test]
fn should_ignore_a_request_whose_token_expired() {
    let mut s = server(4);
    let req = request_for(&token(&Spec {
        expire_seconds: 30,
        ..Spec::default()
    }));
    let before = s.stats().dropped(DropReason::RequestTokenExpired);
    assert!(feed(&mut s, c(1), &req, UNIX + 30).is_empty());
    assert_eq!(s.stats().dropped(DropReason::RequestTokenExpired), before + 1);
    assert_eq!(
        feed(&mut s, c(1), &req, UNIX + 29).len(),
        1,
        "one second earlier it is still valid"
    );
    assert_eq!(s.stats().token_decryptions, 1);
}

#[test]
fn should_ignore_a_request_whose_token_does_not_decrypt() {
    let mut s = server(4);
    let foreign = request_for(&token(&Spec {
        key: Key::from_bytes([9; 32]),
        ..Spec::default()
    }));
    refused(&mut s, c(1), &foreign, DropReason::RequestTokenUndecryptable);
    let good = request_for(&token(&Spec::default()));
    let mut later = good.clone();
    later[22] ^= 1;
    refused(&mut s, c(1), &later, DropReason::RequestTokenUndecryptable);
    for i in [30, 53, 54, 500, REQUEST_PACKET_BYTES - 1] {
        let mut bad = good.clone();
        bad[i] ^= 0x40;
        refused(&mut s, c(1), &bad, DropReason::RequestTokenUndecryptable);
    }
    assert_eq!(s.stats().token_decryptions, 7, "exactly one decryption per request");
}

/// A request whose private token decrypts but whose plaintext is altered by `edit`.
fn request_with_private(edit: impl FnOnce(&mut [u8; CONNECT_TOKEN_PRIVATE_BYTES])) -> Vec<u8> {
    let spec = Spec::default();
    let p = PrivateToken {
        client_id: 1,
        timeout_seconds: 5,
        server_addresses: vec![server_addr()],
        client_to_server_key: Key::from_bytes([1; 32]),
        server_to_client_key: Key::from_bytes([2; 32]),
        user_data: crate::crypto::Secret::zero(),
    };
    let mut buf = [0u8; CONNECT_TOKEN_PRIVATE_BYTES];
    p.write(&mut buf).unwrap();
    edit(&mut buf);
    let (expire, nonce) = (UNIX + 30, [5u8; 24]);
    encrypt_private(&mut Aead::new().unwrap(), &mut buf, PROTOCOL, expire, &nonce, &spec.key).unwrap();
    let r = RequestPacket {
        protocol_id: PROTOCOL,
        expire_timestamp: expire,
        nonce: &nonce,
        token: &buf,
    };
    let mut out = vec![0u8; REQUEST_PACKET_BYTES];
    write_request(&r, &mut out).unwrap();
    out
}

#[test]
fn should_ignore_a_request_whose_decrypted_token_cannot_be_read() {
    let mut s = server(4);
    assert_eq!(
        feed(&mut s, c(1), &request_with_private(|_| {}), UNIX).len(),
        1,
        "the unedited token is good"
    );
    for count in [0u32, 33, u32::MAX] {
        let req = request_with_private(|b| b[12..16].copy_from_slice(&count.to_le_bytes()));
        refused(&mut s, c(2), &req, DropReason::RequestTokenUnreadable);
    }
    for t in [0u8, 3, 255] {
        refused(
            &mut s,
            c(2),
            &request_with_private(|b| b[16] = t),
            DropReason::RequestTokenUnreadable,
        );
    }
}

#[test]
fn should_ignore_a_token_that_does_not_name_this_server() {
    let mut s = server(4);
    let other = vec![addr("127.0.0.1:40001"), addr("[::1]:40000"), addr("10.0.0.1:40000")];
    let req = request_for(&token(&Spec {
        servers: other,
        ..Spec::default()
    }));
    refused(&mut s, c(1), &req, DropReason::RequestServerNotInToken);
    let listed_second = vec![addr("10.0.0.1:1"), server_addr()];
    assert_eq!(
        feed(
            &mut s,
            c(1),
            &request_for(&token(&Spec {
                servers: listed_second,
                ..Spec::default()
            })),
            UNIX
        )
        .len(),
        1
    );
}

#[test]
fn should_ignore_a_request_from_an_address_already_connected() {
    let mut net = Net::new(server(4));
    net.add_client(c(1), &token(&Spec::default()));
    net.connect(0);
    let again = request_for(&token(&Spec {
        client_id: 43,
        ..Spec::default()
    }));
    refused(&mut net.server, c(1), &again, DropReason::AddressAlreadyConnected);
}

#[test]
fn should_ignore_a_request_for_a_client_id_already_connected() {
    let mut net = Net::new(server(4));
    net.add_client(c(1), &token(&Spec::default()));
    net.connect(0);
    let same_id = request_for(&token(&Spec::default()));
    refused(&mut net.server, c(2), &same_id, DropReason::ClientIdAlreadyConnected);
}

#[test]
fn should_ignore_a_token_already_used_from_another_address() {
    let mut s = server(4);
    let req = request_for(&token(&Spec::default()));
    assert_eq!(feed(&mut s, c(1), &req, UNIX).len(), 1);
    refused(&mut s, c(2), &req, DropReason::RequestTokenUsedElsewhere);
    assert_eq!(
        feed(&mut s, c(1), &req, UNIX).len(),
        1,
        "the same address may repeat its request"
    );
    assert_eq!(s.encryption_mappings(), 1);
}

#[test]
fn should_deny_a_request_when_every_slot_is_taken() {
    let mut net = Net::new(server(1));
    net.add_client(c(1), &token(&Spec::default()));
    net.connect(0);
    net.add_client(
        c(2),
        &token(&Spec {
            client_id: 2,
            ..Spec::default()
        }),
    );
    assert!(net.run_until(2_000, |n| n.client(1).state() == ClientState::ConnectionDenied));
    assert_eq!(
        net.peers[1].events,
        vec![CEv::Disconnected(ClientState::ConnectionDenied)]
    );
    assert!(net.server.stats().dropped(DropReason::ServerFull) >= 1);
    assert_eq!(net.server.encryption_mappings(), 1, "no mapping for a denied client");
}

#[test]
fn should_deny_a_response_when_the_slots_filled_meanwhile() {
    let mut net = Net::new(server(1));
    net.add_client(c(1), &token(&Spec::default()));
    net.add_client(
        c(2),
        &token(&Spec {
            client_id: 2,
            ..Spec::default()
        }),
    );
    assert!(net.run_until(3_000, |n| n.client(1).state().is_error()
        || n.client(0).state().is_error()));
    let states = [net.client(0).state(), net.client(1).state()];
    assert!(
        states.contains(&ClientState::Connected) && states.contains(&ClientState::ConnectionDenied),
        "{states:?}"
    );
    assert_eq!(net.server.connected_clients(), 1);
}

#[test]
fn should_ignore_a_request_when_no_encryption_mapping_is_free() {
    let mut s = server(1);
    for i in 0..MAPPINGS_PER_CLIENT as u64 {
        let req = request_for(&token(&Spec {
            client_id: i,
            ..Spec::default()
        }));
        assert_eq!(feed(&mut s, c(i as u16), &req, UNIX).len(), 1);
    }
    let req = request_for(&token(&Spec {
        client_id: 99,
        ..Spec::default()
    }));
    refused(&mut s, c(99), &req, DropReason::RequestNoMappingRoom);
}

#[test]
fn should_ignore_a_response_whose_challenge_token_does_not_decrypt() {
    let tok = token(&Spec::default());
    let t = ConnectToken::read(&tok[..]).unwrap();
    let mut s = server(4);
    assert_eq!(feed(&mut s, c(1), &request_for(&tok[..]), UNIX).len(), 1);
    let garbage = [0x55u8; CHALLENGE_TOKEN_BYTES];
    let p = Packet::Response {
        sequence: 0,
        token: &garbage,
    };
    let mut d = [0u8; MAX_PACKET_BYTES];
    let n = write_packet(
        &mut Aead::new().unwrap(),
        &p,
        1,
        &t.client_to_server_key,
        PROTOCOL,
        &mut d,
    )
    .unwrap();
    let before = s.stats().dropped(DropReason::ResponseChallengeUndecryptable);
    assert!(feed(&mut s, c(1), &d[..n], UNIX).is_empty());
    assert_eq!(
        s.stats().dropped(DropReason::ResponseChallengeUndecryptable),
        before + 1
    );
    assert_eq!(s.connected_clients(), 0);
}

#[test]
fn should_decrypt_at_most_one_token_per_request_and_none_for_cheap_refusals() {
    let mut s = server(4);
    let good = request_for(&token(&Spec::default()));
    for i in 0..500u32 {
        let mut flood = good.clone();
        flood[54..58].copy_from_slice(&i.to_le_bytes());
        assert!(feed(&mut s, c(1), &flood, UNIX).is_empty());
    }
    assert_eq!(s.stats().token_decryptions, 500);
    let mut wrong_protocol = good.clone();
    wrong_protocol[14] ^= 1;
    for _ in 0..500 {
        feed(&mut s, c(2), &wrong_protocol, UNIX);
        feed(&mut s, c(2), &good[..100], UNIX);
        feed(&mut s, c(2), &good, UNIX + 31);
    }
    assert_eq!(s.stats().token_decryptions, 500);
    assert_eq!(s.encryption_mappings(), 0);
}

#[test]
fn should_never_reply_with_more_bytes_than_the_packet_it_answers() {
    let mut net = Net::new(server(1));
    for i in 0..3u16 {
        net.add_client(
            c(i),
            &token(&Spec {
                client_id: i as u64,
                ..Spec::default()
            }),
        );
    }
    net.run(3_000, 10);
    assert_eq!(net.server.connected_clients(), 1);
    assert!(
        net.server.stats().dropped(DropReason::ServerFull) >= 2,
        "denied packets were among the replies"
    );
    let answered: Vec<_> = net.replies.iter().filter(|(_, out)| *out > 0).collect();
    assert!(answered.len() >= 4, "challenges, denials and the first keep-alive");
    for (got, sent) in answered {
        assert!(sent < got, "replied {sent} bytes to {got}");
    }
}

#[test]
fn should_measure_what_a_flooded_request_costs_the_server() {
    let mut s = server(4);
    let good = request_for(&token(&Spec::default()));
    let mut out = Outbox::new();
    let rounds = 5_000u32;
    let start = std::time::Instant::now();
    for i in 0..rounds {
        let mut flood = good.clone();
        flood[54..58].copy_from_slice(&i.to_le_bytes());
        s.receive(1_000, UNIX, c(1), &flood, None, &mut out);
    }
    let ns = start.elapsed().as_nanos() / rounds as u128;
    assert_eq!(s.stats().dropped(DropReason::RequestTokenUndecryptable), rounds as u64);
    assert_eq!((out.datagrams().len(), s.encryption_mappings()), (0, 0));
    println!("a forged connection request costs the server {ns} ns (one token decryption)");
}

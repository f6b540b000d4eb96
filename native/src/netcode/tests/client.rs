//! The client state machine: every error state, trying each server in turn,
//! and what it ignores.

use super::*;
use crate::crypto::Aead;
use crate::netcode::packet::{write_packet, Packet};

fn me() -> SocketAddr {
    addr("127.0.0.1:50001")
}

fn nowhere(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A valid token with `edit` applied to its public bytes.
fn edited(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut t = token(&Spec::default());
    edit(&mut t);
    t
}

#[test]
fn should_reach_invalid_connect_token_for_each_unreadable_token() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("short", edited(|t| t.truncate(2047))),
        ("long", edited(|t| t.push(0))),
        ("version", edited(|t| t[11] = b'1')),
        (
            "created after expiry",
            edited(|t| t[21..29].copy_from_slice(&(UNIX + 31).to_le_bytes())),
        ),
        (
            "no servers",
            edited(|t| t[1089..1093].copy_from_slice(&0u32.to_le_bytes())),
        ),
        (
            "33 servers",
            edited(|t| t[1089..1093].copy_from_slice(&33u32.to_le_bytes())),
        ),
        ("address type 0", edited(|t| t[1093] = 0)),
        ("address type 3", edited(|t| t[1093] = 3)),
    ];
    for (what, bad) in cases {
        let mut client = Client::new().unwrap();
        let mut out = Outbox::new();
        let r = client.connect(1_000, &bad, &mut out);
        assert!(matches!(r, Err(ClientError::InvalidToken(_))), "{what}: {r:?}");
        assert_eq!(client.state(), ClientState::InvalidConnectToken, "{what}");
        client.update(2_000, &mut out);
        assert_eq!(out.datagrams().len(), 0, "{what}: nothing sent");
    }
}

#[test]
fn should_send_connection_requests_at_10_hz_to_the_first_server() {
    let mut net = Net::new(server(1));
    net.filter = Box::new(|_| Fate::Drop);
    net.add_client(
        me(),
        &token(&Spec {
            servers: vec![nowhere(1), nowhere(2)],
            ..Spec::default()
        }),
    );
    net.run(1_000, 10);
    let requests: Vec<&Wire> = net.log.iter().filter(|w| w.bytes[0] == 0).collect();
    assert!((9..=11).contains(&requests.len()), "{} requests in 1 s", requests.len());
    assert!(requests
        .iter()
        .all(|w| w.to == nowhere(1) && w.bytes.len() == REQUEST_PACKET_BYTES));
    assert_eq!(net.client(0).state(), ClientState::SendingConnectionRequest);
}

#[test]
fn should_reach_connection_request_timed_out_when_no_server_answers() {
    let mut net = Net::new(server(1));
    net.filter = Box::new(|_| Fate::Drop);
    net.add_client(
        me(),
        &token(&Spec {
            timeout_seconds: 2,
            ..Spec::default()
        }),
    );
    let start = net.now;
    assert!(net.run_until(5_000, |n| n.client(0).state().is_error()));
    assert_eq!(
        net.peers[0].events,
        vec![CEv::Disconnected(ClientState::ConnectionRequestTimedOut)]
    );
    assert!((2_000..=2_020).contains(&(net.now - start)));
}

#[test]
fn should_reach_connection_response_timed_out_when_responses_go_unanswered() {
    let mut net = Net::new(server(1));
    net.filter = Box::new(|w| {
        if w.bytes[0] & 0xf == 3 {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    net.add_client(
        me(),
        &token(&Spec {
            timeout_seconds: 2,
            ..Spec::default()
        }),
    );
    assert!(net.run_until(500, |n| n.client(0).state() == ClientState::SendingConnectionResponse));
    assert!(net.run_until(5_000, |n| n.client(0).state().is_error()));
    assert_eq!(
        net.peers[0].events,
        vec![CEv::Disconnected(ClientState::ConnectionResponseTimedOut)]
    );
}

#[test]
fn should_reach_connection_timed_out_when_a_connected_server_goes_silent() {
    let mut net = Net::new(server(1));
    net.add_client(
        me(),
        &token(&Spec {
            timeout_seconds: 2,
            ..Spec::default()
        }),
    );
    net.connect(0);
    net.filter = Box::new(|w| if w.to == me() { Fate::Drop } else { Fate::Deliver });
    let start = net.now;
    assert!(net.run_until(5_000, |n| n.client(0).state().is_error()));
    assert_eq!(
        net.peers[0].events.last(),
        Some(&CEv::Disconnected(ClientState::ConnectionTimedOut))
    );
    assert!((2_000..=2_020).contains(&(net.now - start)));
}

#[test]
fn should_reach_connection_denied_when_the_only_server_is_full() {
    let mut net = Net::new(server(1));
    net.add_client(
        addr("127.0.0.1:50009"),
        &token(&Spec {
            client_id: 9,
            ..Spec::default()
        }),
    );
    net.connect(0);
    net.add_client(me(), &token(&Spec::default()));
    assert!(net.run_until(2_000, |n| n.client(1).state().is_error()));
    assert_eq!(
        net.peers[1].events,
        vec![CEv::Disconnected(ClientState::ConnectionDenied)]
    );
}

#[test]
fn should_reach_connect_token_expired_across_server_addresses() {
    let mut net = Net::new(server(1));
    net.filter = Box::new(|_| Fate::Drop);
    let spec = Spec {
        servers: vec![nowhere(1), nowhere(2)],
        expire_seconds: 3,
        timeout_seconds: 2,
        ..Spec::default()
    };
    net.add_client(me(), &token(&spec));
    let start = net.now;
    assert!(net.run_until(10_000, |n| n.client(0).state().is_error()));
    assert_eq!(
        net.peers[0].events,
        vec![CEv::Disconnected(ClientState::ConnectTokenExpired)]
    );
    assert!(
        (3_000..=3_020).contains(&(net.now - start)),
        "expired {} ms after connecting",
        net.now - start
    );
    assert!(
        net.log.iter().any(|w| w.to == nowhere(2)),
        "the second address was tried before expiry"
    );
}

#[test]
fn should_reach_connect_token_expired_with_timeouts_disabled() {
    let mut net = Net::new(server(1));
    net.filter = Box::new(|_| Fate::Drop);
    net.add_client(
        me(),
        &token(&Spec {
            expire_seconds: 4,
            timeout_seconds: -1,
            ..Spec::default()
        }),
    );
    assert!(net.run_until(10_000, |n| n.client(0).state().is_error()));
    assert_eq!(net.client(0).state(), ClientState::ConnectTokenExpired);
}

#[test]
fn should_try_the_next_server_address_when_one_times_out() {
    let mut net = Net::new(server(1));
    let spec = Spec {
        servers: vec![nowhere(1), server_addr()],
        timeout_seconds: 1,
        ..Spec::default()
    };
    net.add_client(me(), &token(&spec));
    net.connect(0);
    assert_eq!(
        net.peers[0].events,
        vec![CEv::Connected {
            client_index: 0,
            max_clients: 1
        }]
    );
    assert_eq!(net.client(0).server_address(), Some(server_addr()));
    let first_to_server = net.log.iter().position(|w| w.to == server_addr()).unwrap();
    assert!(net.log[..first_to_server].iter().all(|w| w.to == nowhere(1)));
}

#[test]
fn should_try_the_next_server_address_when_one_denies() {
    let mut net = Net::new(server(1));
    net.add_client(
        addr("127.0.0.1:50009"),
        &token(&Spec {
            client_id: 9,
            ..Spec::default()
        }),
    );
    net.connect(0);
    let spec = Spec {
        servers: vec![server_addr(), nowhere(7)],
        timeout_seconds: 1,
        ..Spec::default()
    };
    net.add_client(me(), &token(&spec));
    assert!(net.run_until(1_000, |n| n.client(1).server_address() == Some(nowhere(7))));
    assert_eq!(net.client(1).state(), ClientState::SendingConnectionRequest);
    assert!(net.run_until(3_000, |n| n.client(1).state().is_error()));
    assert_eq!(
        net.client(1).state(),
        ClientState::ConnectionRequestTimedOut,
        "the last server's failure is reported"
    );
}

#[test]
fn should_discard_payloads_before_connected_and_packets_from_elsewhere() {
    let tok = token(&Spec::default());
    let t = ConnectToken::read(&tok).unwrap();
    let mut client = Client::new().unwrap();
    let mut out = Outbox::new();
    client.connect(1_000, &tok, &mut out).unwrap();
    let mut d = [0u8; MAX_PACKET_BYTES];
    let n = write_packet(
        &mut Aead::new().unwrap(),
        &Packet::Payload(b"early"),
        5,
        &t.server_to_client_key,
        PROTOCOL,
        &mut d,
    )
    .unwrap();
    client.receive(1_000, server_addr(), &d[..n], &mut out);
    assert_eq!(client.stats().dropped(DropReason::Unexpected), 1);
    client.receive(1_000, nowhere(9), &d[..n], &mut out);
    assert_eq!(client.stats().dropped(DropReason::NotFromServer), 1);
    client.receive(1_000, server_addr(), &[], &mut out);
    client.receive(1_000, server_addr(), &[0; 30], &mut out);
    assert_eq!(client.stats().dropped(DropReason::TooSmall), 1);
    assert_eq!(client.stats().dropped(DropReason::PacketTypeNotAllowed), 1);
    assert!(out.events().is_empty());
    assert_eq!(client.state(), ClientState::SendingConnectionRequest);
}

#[test]
fn should_refuse_to_send_payloads_unless_connected() {
    let mut client = Client::new().unwrap();
    let mut out = Outbox::new();
    assert_eq!(
        client.send_payload(0, b"x", &mut out),
        Err(ClientError::NotConnected(ClientState::Disconnected))
    );
    let mut net = Net::new(server(1));
    net.add_client(me(), &token(&Spec::default()));
    net.connect(0);
    let p = &mut net.peers[0];
    assert_eq!(
        p.client.send_payload(0, &[], &mut p.out),
        Err(ClientError::PayloadSize(0))
    );
    assert_eq!(
        p.client.send_payload(0, &[1; 1201], &mut p.out),
        Err(ClientError::PayloadSize(1201))
    );
    assert_eq!(p.client.client_index(), Some(0));
    assert_eq!(p.client.max_clients(), Some(1));
}

#[test]
fn should_stop_in_disconnected_when_disconnecting_while_connecting() {
    let mut client = Client::new().unwrap();
    let mut out = Outbox::new();
    client.disconnect(0, &mut out);
    assert!(
        out.events().is_empty() && out.datagrams().len() == 0,
        "nothing to do when disconnected"
    );
    client.connect(0, &token(&Spec::default()), &mut out).unwrap();
    client.disconnect(10, &mut out);
    assert_eq!(client.state(), ClientState::Disconnected);
    assert_eq!(
        out.events(),
        &[ClientEvent::Disconnected {
            state: ClientState::Disconnected
        }]
    );
    assert_eq!(out.datagrams().len(), NUM_DISCONNECT_PACKETS);
}

#[test]
fn should_name_every_state_as_the_standard_does() {
    let all = [
        (ClientState::ConnectTokenExpired, -6, "connect token expired"),
        (ClientState::InvalidConnectToken, -5, "invalid connect token"),
        (ClientState::ConnectionTimedOut, -4, "connection timed out"),
        (
            ClientState::ConnectionResponseTimedOut,
            -3,
            "connection response timed out",
        ),
        (
            ClientState::ConnectionRequestTimedOut,
            -2,
            "connection request timed out",
        ),
        (ClientState::ConnectionDenied, -1, "connection denied"),
        (ClientState::Disconnected, 0, "disconnected"),
        (ClientState::SendingConnectionRequest, 1, "sending connection request"),
        (ClientState::SendingConnectionResponse, 2, "sending connection response"),
        (ClientState::Connected, 3, "connected"),
    ];
    for (s, n, name) in all {
        assert_eq!((s as i8, s.name(), s.is_error()), (n, name, n < 0));
    }
}

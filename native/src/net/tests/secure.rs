//! The secure link (netcode 1.02 under the peers), endpoint to endpoint: a
//! small in-memory network ([`Net`]) of any number of endpoints routes
//! datagrams by address, through optional conditioners and filters, with a
//! hand-driven clock.

use super::*;
use crate::crypto::{Aead, Key};
use crate::netcode::{generate_connect_token, ClientState, DropReason, TokenParams, USER_DATA_BYTES};

const PROTOCOL: u64 = 0x1122_3344_5566_7788;
const UNIX: u64 = 1_700_000_000;

fn private_key() -> Key {
    Key::from_bytes([0x5a; 32])
}

pub(super) fn token(client_id: u64, servers: &[SocketAddr], timeout_seconds: i32) -> Vec<u8> {
    let user_data: Vec<u8> = (0..USER_DATA_BYTES).map(|i| (i * 3) as u8).collect();
    let p = TokenParams {
        protocol_id: PROTOCOL,
        client_id,
        server_addresses: servers,
        expire_seconds: 30,
        timeout_seconds,
        user_data: &user_data,
        private_key: &private_key(),
    };
    generate_connect_token(&mut Aead::new().unwrap(), &p, UNIX)
        .unwrap()
        .to_vec()
}

pub(super) fn listener(at: SocketAddr, cfg: Config) -> Endpoint {
    let listen = SecureListen {
        protocol_id: PROTOCOL,
        private_key: private_key(),
        public_address: at,
    };
    let mut e = Endpoint::new_secure(cfg, 7, Some(listen)).unwrap();
    e.set_unix_time(UNIX);
    e
}

fn client() -> Endpoint {
    let cfg = Config {
        accept_incoming: false,
        ..Config::default()
    };
    Endpoint::new_secure(cfg, 8, None).unwrap()
}

/// Returns false to drop a datagram (from, to, bytes); may change it.
pub(super) type NetFilter = Box<dyn FnMut(SocketAddr, SocketAddr, &mut Vec<u8>) -> bool>;

/// Endpoints by address; one `step` is 1 ms.
pub(super) struct Net {
    eps: Vec<(SocketAddr, Endpoint, Option<Conditioner>)>,
    pub(super) now: u64,
    pub(super) filter: Option<NetFilter>,
    /// Endpoints that neither run nor receive (a dead process).
    dead: Vec<SocketAddr>,
}

impl Net {
    pub(super) fn new(eps: Vec<(&str, Endpoint)>) -> Self {
        Net {
            eps: eps.into_iter().map(|(a, e)| (addr(a), e, None)).collect(),
            now: 1_000_000,
            filter: None,
            dead: Vec::new(),
        }
    }

    pub(super) fn ep(&mut self, a: &str) -> &mut Endpoint {
        let a = addr(a);
        &mut self.eps.iter_mut().find(|e| e.0 == a).expect("endpoint").1
    }

    fn condition(&mut self, a: &str, loss: f64, seed: u64) {
        let a = addr(a);
        let e = self.eps.iter_mut().find(|e| e.0 == a).expect("endpoint");
        e.2 = Some(Conditioner::new(ConditionerConfig {
            loss,
            duplicate: 0.05,
            reorder: 0.05,
            seed,
            ..ConditionerConfig::default()
        }));
    }

    pub(super) fn step(&mut self) {
        let now = self.now;
        let mut sent = Vec::new();
        for (from, e, cond) in &mut self.eps {
            if self.dead.contains(from) {
                continue;
            }
            e.update(now);
            while let Some((to, d)) = e.poll_transmit() {
                match cond.as_mut() {
                    Some(c) => c.push(now, to, &d),
                    None => sent.push((*from, to, d)),
                }
            }
            if let Some(c) = cond.as_mut() {
                c.drain_due(now, |to, d| sent.push((*from, to, d.to_vec())));
            }
        }
        for (from, to, mut d) in sent {
            if let Some(f) = self.filter.as_mut() {
                if !f(from, to, &mut d) {
                    continue;
                }
            }
            if self.dead.contains(&to) {
                continue;
            }
            if let Some((_, e, _)) = self.eps.iter_mut().find(|e| e.0 == to) {
                e.handle_datagram(now, from, &d);
            }
        }
        self.now += 1;
    }

    /// Steps until `a` has an event; returns it.
    pub(super) fn next_event(&mut self, a: &str, max_steps: u64) -> Event {
        for _ in 0..max_steps {
            if let Some(e) = self.ep(a).poll_event() {
                return e;
            }
            self.step();
        }
        panic!("no event at {a} within {max_steps} ms");
    }
}

pub(super) const S: &str = "10.0.0.2:2000";
pub(super) const C: &str = "10.0.0.1:1000";

/// A secure listener and a client connected to it: (net, server's peer id at the client,
/// client's peer id at the server, handshake time in ms).
fn connected(timeout_seconds: i32) -> (Net, PeerId, PeerId, u64) {
    let mut net = Net::new(vec![(S, listener(addr(S), Config::default())), (C, client())]);
    let t = token(42, &[addr(S)], timeout_seconds);
    let start = net.now;
    let pc = net.ep(C).connect_token(start, &t).unwrap();
    let Event::Connected { peer: ps, addr: a } = net.next_event(S, 1000) else {
        panic!("the server did not see the client")
    };
    assert_eq!(a, addr(C));
    assert_eq!(
        net.next_event(C, 1000),
        Event::Connected {
            peer: pc,
            addr: addr(S)
        }
    );
    let took = net.now - start;
    (net, pc, ps, took)
}

#[test]
fn should_connect_with_a_token_in_a_few_milliseconds_and_know_who_the_client_is() {
    let (mut net, pc, ps, took) = connected(10);
    // No 100 ms wait for the challenge response: request, challenge, response, keep-alive.
    assert!(took <= 5, "the handshake took {took} ms of simulated time");
    let id = net.ep(S).peer_identity(ps).expect("a secure peer");
    assert_eq!(id.client_id, 42);
    assert_eq!(id.user_data[..4], [0, 3, 6, 9]);
    assert_eq!(
        net.ep(C).peer_identity(pc),
        None,
        "a client's server has no token identity"
    );
    let now = net.now;
    net.ep(C)
        .send(now, pc, 0, Reliability::ReliableOrdered, b"hello")
        .unwrap();
    net.ep(S).send(now, ps, 3, Reliability::Unreliable, b"there").unwrap();
    let mut got = Vec::new();
    for _ in 0..20 {
        net.step();
        for a in [S, C] {
            while let Some(e) = net.ep(a).poll_event() {
                if let Event::Message { channel, data, .. } = e {
                    got.push((a, channel, data));
                }
            }
        }
    }
    got.sort();
    assert_eq!(got, vec![(C, 3, b"there".to_vec()), (S, 0, b"hello".to_vec())]);
    let st = net.ep(S).secure_stats().unwrap();
    assert_eq!((st.connected_clients, st.encryption_mappings), (1, 1));
    assert_eq!(st.netcode.token_decryptions, 1);
}

#[test]
fn should_stay_connected_on_netcode_keep_alives_alone_and_send_no_pings() {
    let (mut net, _, _, _) = connected(2);
    for _ in 0..5_000 {
        net.step();
    }
    for a in [S, C] {
        assert_eq!(net.ep(a).poll_event(), None, "{a} saw an event while idle");
        assert_eq!(net.ep(a).peer_count(), 1);
        assert_eq!(net.ep(a).stats().pings_sent, 0);
    }
}

#[test]
fn should_deliver_every_reliable_ordered_message_once_in_order_under_loss_within_the_mtu() {
    let (mut net, pc, _, _) = connected(10);
    net.condition(C, 0.1, 11);
    net.condition(S, 0.1, 12);
    net.filter = Some(Box::new(|_, _, d| {
        // The default MTU's peer payload, as on the plain link (1200 - 8), and netcode's 25
        // bytes of framing.
        assert!(d.len() <= 1217, "a {} byte datagram", d.len());
        true
    }));
    let (n, mut sent, mut got) = (3_000u32, 0u32, 0u32);
    for _ in 0..60_000 {
        while sent < n {
            let now = net.now;
            let len = if sent % 100 == 0 { 5_000 } else { 40 };
            match net
                .ep(C)
                .send(now, pc, 1, Reliability::ReliableOrdered, &msg(sent, len))
            {
                Ok(()) => sent += 1,
                Err(SendError::WindowFull) => break,
                Err(e) => panic!("{e}"),
            }
        }
        net.step();
        while let Some(e) = net.ep(S).poll_event() {
            if let Event::Message { data, .. } = e {
                assert_eq!(seq_of(&data), got, "out of order or repeated");
                assert_eq!(data.len(), if got % 100 == 0 { 5_000 } else { 40 });
                got += 1;
            }
        }
        if got == n {
            break;
        }
    }
    assert_eq!(got, n);
    assert!(net.ep(C).stats().retransmissions > 0, "the loss was felt");
}

#[test]
fn should_refuse_a_plain_handshake_at_a_secure_listener_with_token_required() {
    let mut net = Net::new(vec![
        (S, listener(addr(S), Config::default())),
        (C, Endpoint::new(Config::default(), 3)),
    ]);
    let now = net.now;
    let p = net.ep(C).connect(now, addr(S)).unwrap();
    net.filter = Some(Box::new(|from, _, d| {
        if from == addr(S) {
            assert!(d.len() < HANDSHAKE_LEN, "the refusal is smaller than the HELLO");
        }
        true
    }));
    assert_eq!(
        net.next_event(C, 100),
        Event::Disconnected {
            peer: p,
            reason: DisconnectReason::TokenRequired
        }
    );
    assert_eq!(net.ep(S).stats().refused_token_required, 1);
    assert_eq!(net.ep(S).peer_count(), 0);
    assert_eq!(net.ep(S).secure_stats().unwrap().encryption_mappings, 0);
    let now = net.now;
    assert_eq!(net.ep(S).connect(now, addr(C)), Err(SendError::NeedsToken));
}

#[test]
fn should_refuse_a_token_at_a_plain_listener_and_try_the_tokens_next_server() {
    const P: &str = "10.0.0.3:3000";
    let mut net = Net::new(vec![
        (P, Endpoint::new(Config::default(), 4)),
        (S, listener(addr(S), Config::default())),
        (C, client()),
    ]);
    net.filter = Some(Box::new(|from, _, d| {
        if from == addr(P) {
            assert!(d.len() < crate::netcode::REQUEST_PACKET_BYTES);
        }
        true
    }));
    // Only the plain listener: refused as not secure.
    let now = net.now;
    let p = net.ep(C).connect_token(now, &token(1, &[addr(P)], 10)).unwrap();
    assert_eq!(
        net.next_event(C, 100),
        Event::Disconnected {
            peer: p,
            reason: DisconnectReason::NotSecure
        }
    );
    assert_eq!(net.ep(P).stats().refused_not_secure, 1);
    assert_eq!(net.ep(P).peer_count(), 0);
    // The plain listener first, then the secure one: connected there.
    let now = net.now;
    let p = net
        .ep(C)
        .connect_token(now, &token(2, &[addr(P), addr(S)], 10))
        .unwrap();
    assert_eq!(net.next_event(C, 100), Event::Connected { peer: p, addr: addr(S) });
    assert_eq!(net.ep(C).peer_addr(p), Some(addr(S)));
    let now = net.now;
    assert_eq!(
        net.ep(P).connect_token(now, &token(3, &[addr(S)], 10)),
        Err(TokenConnectError::NotSecure)
    );
}

#[test]
fn should_deny_a_client_when_every_slot_is_taken() {
    const C2: &str = "10.0.0.5:1000";
    let cfg = Config {
        max_peers: 1,
        ..Config::default()
    };
    let mut net = Net::new(vec![(S, listener(addr(S), cfg)), (C, client()), (C2, client())]);
    let now = net.now;
    net.ep(C).connect_token(now, &token(1, &[addr(S)], 10)).unwrap();
    assert!(matches!(net.next_event(C, 100), Event::Connected { .. }));
    let now = net.now;
    let p2 = net.ep(C2).connect_token(now, &token(2, &[addr(S)], 10)).unwrap();
    assert_eq!(
        net.next_event(C2, 100),
        Event::Disconnected {
            peer: p2,
            reason: DisconnectReason::Secure(ClientState::ConnectionDenied)
        }
    );
    let st = net.ep(S).secure_stats().unwrap();
    assert!(st.netcode.dropped(DropReason::ServerFull) >= 1);
    assert_eq!((st.connected_clients, net.ep(S).peer_count()), (1, 1));
}

#[test]
fn should_time_out_both_sides_per_the_tokens_timeout() {
    let (mut net, pc, ps, _) = connected(2);
    net.dead.push(addr(S));
    let start = net.now;
    assert_eq!(
        net.next_event(C, 3_000),
        Event::Disconnected {
            peer: pc,
            reason: DisconnectReason::Timeout
        }
    );
    let took = net.now - start;
    assert!((1_900..=2_200).contains(&took), "the client timed out after {took} ms");
    net.dead.clear();
    net.dead.push(addr(C));
    assert_eq!(
        net.next_event(S, 3_000),
        Event::Disconnected {
            peer: ps,
            reason: DisconnectReason::Timeout
        }
    );
    assert_eq!(net.ep(S).secure_stats().unwrap().connected_clients, 0);
}

#[test]
fn should_end_an_attempt_no_server_answers_with_the_request_timeout() {
    let mut net = Net::new(vec![(C, client())]);
    let now = net.now;
    let p = net.ep(C).connect_token(now, &token(1, &[addr(S)], 1)).unwrap();
    assert_eq!(
        net.next_event(C, 2_000),
        Event::Disconnected {
            peer: p,
            reason: DisconnectReason::Secure(ClientState::ConnectionRequestTimedOut)
        }
    );
}

#[test]
fn should_drop_changed_and_replayed_packets_and_deliver_each_message_once() {
    use std::cell::RefCell;
    use std::rc::Rc;
    let (mut net, pc, _, _) = connected(10);
    // On the way to the server, every fifth packet has a bit flipped; every packet is recorded.
    let kept: Rc<RefCell<Vec<Vec<u8>>>> = Rc::default();
    let (rec, to_server, mut rng) = (kept.clone(), addr(S), Rng::new(99));
    net.filter = Some(Box::new(move |_, to, d| {
        if to == to_server {
            if rng.next_u32() % 5 == 0 {
                let bit = rng.next_u32() as usize % (d.len() * 8);
                d[bit / 8] ^= 1 << (bit % 8);
            } else {
                rec.borrow_mut().push(d.clone());
            }
        }
        true
    }));
    let n = 2_000u32;
    let mut got = 0;
    let mut check = |net: &mut Net| {
        while let Some(e) = net.ep(S).poll_event() {
            if let Event::Message { data, .. } = e {
                assert_eq!(seq_of(&data), got, "each message once, in order");
                got += 1;
            }
        }
    };
    for i in 0..n {
        let now = net.now;
        net.ep(C)
            .send(now, pc, 0, Reliability::ReliableOrdered, &msg(i, 30))
            .unwrap();
        if i % 20 == 0 {
            net.step();
            check(&mut net);
        }
    }
    for _ in 0..2_000 {
        net.step();
        check(&mut net);
    }
    let changed = net.ep(S).secure_stats().unwrap().netcode;
    assert!(changed.dropped(DropReason::Unauthentic) > 0, "{changed:?}");
    // Every packet that arrived intact, again: each one a replay.
    net.filter = None;
    let recorded = kept.borrow().clone();
    assert!(recorded.len() > 20, "{} recorded", recorded.len());
    let now = net.now;
    for d in &recorded {
        net.ep(S).handle_datagram(now, addr(C), d);
    }
    let after = net.ep(S).secure_stats().unwrap().netcode;
    let replayed = after.dropped(DropReason::Replayed) - changed.dropped(DropReason::Replayed);
    assert_eq!(replayed, recorded.len() as u64);
    for _ in 0..50 {
        net.step();
    }
    check(&mut net);
    assert_eq!(
        got, n,
        "everything arrived once; nothing replayed or changed was delivered"
    );
    assert_eq!(net.ep(S).peer_count(), 1, "the connection survives");
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
/// CPU time of moving `n` 64-byte reliable-ordered messages from `tx` to `rx` (peer `to` at
/// `tx`), in steps of 1 ms and batches of at most 1,024: (sender ns, receiver ns, data
/// datagrams, their bytes, datagrams back). The sender's side is `send`, `update`, framing and reading the
/// acknowledgements; the receiver's is reading the datagrams, `update`, its acknowledgements
/// and taking the messages.
fn transfer_cost(
    tx: &mut Endpoint,
    rx: &mut Endpoint,
    (tx_addr, rx_addr, to): (SocketAddr, SocketAddr, PeerId),
    now: &mut u64,
    n: u32,
) -> (u64, u64, u64, u64, u64) {
    use crate::crypto::cost::thread_cpu_ns;
    let (mut sent, mut got, mut tx_ns, mut rx_ns, mut dgs, mut bytes) = (0u32, 0u32, 0, 0, 0u64, 0u64);
    let mut acks_sent = 0u64;
    let mut data = Vec::new();
    for _ in 0..200_000 {
        let t = thread_cpu_ns();
        let mut batch = 0;
        while sent < n && batch < 1_024 {
            match tx.send(*now, to, 0, Reliability::ReliableOrdered, &msg(sent, 64)) {
                Ok(()) => (sent, batch) = (sent + 1, batch + 1),
                Err(SendError::WindowFull) => break,
                Err(e) => panic!("{e}"),
            }
        }
        tx.update(*now);
        while let Some((_, d)) = tx.poll_transmit() {
            data.push(d);
        }
        let t2 = thread_cpu_ns();
        tx_ns += t2 - t;
        dgs += data.len() as u64;
        bytes += data.iter().map(|d| d.len() as u64).sum::<u64>();
        for d in data.drain(..) {
            rx.handle_datagram(*now, tx_addr, &d);
        }
        rx.update(*now);
        let mut acks = Vec::new();
        while let Some((_, d)) = rx.poll_transmit() {
            acks.push(d);
        }
        while let Some(e) = rx.poll_event() {
            if let Event::Message { data, .. } = e {
                assert_eq!(seq_of(&data), got, "out of order or repeated");
                got += 1;
            }
        }
        let t3 = thread_cpu_ns();
        rx_ns += t3 - t2;
        acks_sent += acks.len() as u64;
        for d in &acks {
            tx.handle_datagram(*now, rx_addr, d);
        }
        tx_ns += thread_cpu_ns() - t3;
        *now += 1;
        if got == n {
            return (tx_ns, rx_ns, dgs, bytes, acks_sent);
        }
    }
    panic!("{got} of {n} messages delivered");
}

#[test]
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn secure_cost_per_datagram_of_a_reliable_ordered_transfer_against_the_plain_link() {
    // The same transfer in memory (no sockets) over a plain pair and a secure pair: what each
    // side spends per data datagram, best of several rounds. Run with `cargo test --release
    // secure_cost -- --nocapture` (docs/netcode.md quotes it); it asserts only delivery.
    let n = 20_000;
    let mut plain = Sim::pair();
    let (pa, _) = plain.connect();
    let (mut net, pc, _, _) = connected(10);
    let mut eps = std::mem::take(&mut net.eps);
    let (s, c) = eps.split_at_mut(1);
    let (s_addr, c_addr) = (s[0].0, c[0].0);
    let (mut best_plain, mut best_secure) = ([u64::MAX; 2], [u64::MAX; 2]);
    let mut shape = [(0, 0, 0); 2];
    for _ in 0..5 {
        let r = transfer_cost(
            &mut plain.a,
            &mut plain.b,
            (plain.a_addr, plain.b_addr, pa),
            &mut plain.now,
            n,
        );
        best_plain = [best_plain[0].min(r.0 / r.2), best_plain[1].min(r.1 / r.2)];
        shape[0] = (r.2, r.3, r.4);
        let r = transfer_cost(&mut c[0].1, &mut s[0].1, (c_addr, s_addr, pc), &mut net.now, n);
        best_secure = [best_secure[0].min(r.0 / r.2), best_secure[1].min(r.1 / r.2)];
        shape[1] = (r.2, r.3, r.4);
    }
    assert_eq!(
        shape[0].0, shape[1].0,
        "a secure datagram carries as many commands as a plain one"
    );
    println!("{n} reliable-ordered 64-byte messages in memory, ns on the CPU per data datagram (best of 5):");
    for (name, b, (dgs, bytes, back)) in [("plain", best_plain, shape[0]), ("secure", best_secure, shape[1])] {
        println!(
            "  {name:<7} sender {:>5}  receiver {:>5}  ({dgs} datagrams of {} bytes on average, {:.1} messages each; {back} back)",
            b[0],
            b[1],
            bytes / dgs,
            n as f64 / dgs as f64
        );
    }
    println!(
        "  secure - plain: sender {:+} ns, receiver {:+} ns per datagram",
        best_secure[0] as i64 - best_plain[0] as i64,
        best_secure[1] as i64 - best_plain[1] as i64
    );
}

#[test]
fn should_give_a_secure_peer_payload_the_plain_links_room_up_to_netcodes_1200_bytes() {
    use crate::net::link::secure::max_datagram;
    for mtu in [256, 1000, 1200, 1208, 1209, 1225, 1500, 65_507] {
        // Tailroom and headroom: the plain link's 4 + 4, netcode's 16 + 9.
        let plain_room = mtu - 8;
        assert_eq!(max_datagram(mtu, false) - 25, plain_room.min(1200), "mtu {mtu}");
        assert_eq!(max_datagram(mtu, true), mtu.min(1225), "mtu {mtu}, whole payloads");
    }
}

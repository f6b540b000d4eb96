//! Seeded fuzzing of every parser and of both state machines: truncation at
//! every length, random bytes and random mutations of real datagrams. Nothing
//! may panic, every datagram is counted once, and nothing changed is
//! delivered. The seed is printed; set TSAGE_SEED to replay one.

use super::*;
use crate::crypto::Aead;
use crate::netcode::challenge::ChallengeToken;
use crate::netcode::packet::{read_packet, read_request, Allowed};

struct Rng(u64);

impl Rng {
    fn seeded(test: &str) -> Rng {
        let seed = std::env::var("TSAGE_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        println!("{test}: seed {seed} (re-run with TSAGE_SEED={seed})");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn c1() -> SocketAddr {
    addr("127.0.0.1:50001")
}

/// A connected pair and one real datagram of every kind seen on the way.
fn real_traffic() -> (Net, Vec<Vec<u8>>) {
    let mut net = Net::new(server(1));
    net.add_client(c1(), &token(&Spec::default()));
    net.connect(0);
    let p = &mut net.peers[0];
    p.client.send_payload(net.now, &[3; 700], &mut p.out).unwrap();
    net.server.send_payload(net.now, 0, &[4; 1200], &mut net.s_out).unwrap();
    net.collect();
    net.deliver();
    net.run(300, 10);
    let mut kinds: Vec<Vec<u8>> = Vec::new();
    for w in &net.log {
        if !kinds
            .iter()
            .any(|k| k[0] & 0xf == w.bytes[0] & 0xf && (k[0] == 0) == (w.bytes[0] == 0))
        {
            kinds.push(w.bytes.clone());
        }
    }
    assert!(kinds.len() >= 5, "request, challenge, response, keep-alive, payload");
    (net, kinds)
}

/// Feeds `d` to the server (from the connected client and from a stranger)
/// and to the client, checking each counts it exactly once.
fn feed_all(net: &mut Net, d: &[u8], seed_note: &str) {
    let unix = net.unix();
    for from in [c1(), addr("10.9.8.7:6")] {
        let before = net.server.stats().dropped_total() + net.server.stats().datagrams_accepted;
        net.server.receive(net.now, unix, from, d, None, &mut net.s_out);
        let after = net.server.stats().dropped_total() + net.server.stats().datagrams_accepted;
        assert_eq!(after, before + 1, "{seed_note}: server counted a datagram once");
    }
    let p = &mut net.peers[0];
    let before = p.client.stats().dropped_total() + p.client.stats().datagrams_accepted;
    p.client.receive(net.now, server_addr(), d, &mut p.out);
    let after = p.client.stats().dropped_total() + p.client.stats().datagrams_accepted;
    assert_eq!(after, before + 1, "{seed_note}: client counted a datagram once");
    let mut aead = Aead::new().unwrap();
    let mut scratch = [0u8; MAX_PACKET_BYTES];
    let _ = read_request(d, PROTOCOL, UNIX);
    let _ = read_packet(
        &mut aead,
        d,
        &private_key(),
        PROTOCOL,
        Allowed::SERVER,
        None,
        &mut scratch,
    );
    let _ = ConnectToken::read(d);
}

#[test]
fn should_survive_every_truncation_of_every_real_datagram() {
    let (mut net, kinds) = real_traffic();
    let events = (net.s_events.len(), net.peers[0].events.len());
    for k in &kinds {
        for len in 0..k.len() {
            feed_all(&mut net, &k[..len], &format!("prefix {:#04x} cut at {len}", k[0]));
        }
    }
    net.collect();
    assert_eq!(
        (net.s_events.len(), net.peers[0].events.len()),
        events,
        "no truncated datagram did anything"
    );
}

#[test]
fn should_survive_random_datagrams_and_deliver_no_mutated_one() {
    let mut rng = Rng::seeded("should_survive_random_datagrams_and_deliver_no_mutated_one");
    let (mut net, kinds) = real_traffic();
    let events = (net.s_events.len(), net.peers[0].events.len());
    for i in 0..20_000 {
        let len = rng.below(1_300);
        let mut d = rng.bytes(len);
        if let Some(first) = d.first_mut() {
            *first = match rng.below(4) {
                0 => 0,
                1 => (1 + rng.below(8) as u8) << 4 | rng.below(7) as u8,
                _ => *first,
            };
        }
        feed_all(&mut net, &d, &format!("random datagram {i} (seed above)"));
    }
    for i in 0..5_000 {
        let mut d = kinds[rng.below(kinds.len())].clone();
        for _ in 0..1 + rng.below(8) {
            let at = rng.below(d.len());
            d[at] ^= 1 + rng.below(255) as u8;
        }
        feed_all(&mut net, &d, &format!("mutation {i} (seed above)"));
    }
    net.collect();
    assert_eq!(
        (net.s_events.len(), net.peers[0].events.len()),
        events,
        "nothing random or mutated was delivered"
    );
    assert_eq!(net.client(0).state(), ClientState::Connected, "the connection survives");
}

#[test]
fn should_read_or_refuse_random_and_truncated_tokens_without_panicking() {
    let mut rng = Rng::seeded("should_read_or_refuse_random_and_truncated_tokens_without_panicking");
    let good = token(&Spec::default());
    for len in 0..good.len() {
        assert!(ConnectToken::read(&good[..len]).is_err(), "cut at {len}");
    }
    let mut refused = 0;
    for _ in 0..2_000 {
        let mut t = good.clone();
        let from = 37 + rng.below(good.len() - 37);
        let n = rng.below(good.len() - from + 1);
        t[from..from + n].copy_from_slice(&rng.bytes(n));
        refused += ConnectToken::read(&t).is_err() as u32;
        let mut private = [0u8; CONNECT_TOKEN_PRIVATE_BYTES];
        private.copy_from_slice(&rng.bytes(CONNECT_TOKEN_PRIVATE_BYTES));
        if rng.below(2) == 0 {
            private[12..16].copy_from_slice(&(1 + rng.below(32) as u32).to_le_bytes());
        }
        let _ = PrivateToken::read(&private);
        let challenge: [u8; CHALLENGE_TOKEN_BYTES] = rng.bytes(CHALLENGE_TOKEN_BYTES).try_into().unwrap();
        let _ = ChallengeToken::read(&challenge);
    }
    assert!(refused > 0, "random public tokens are refused at times");
}

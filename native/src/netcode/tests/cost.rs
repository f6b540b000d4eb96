//! What netcode adds per payload packet around the AEAD: the client sealing a payload in
//! place (prefix, sequence, tag, moving the packet to the front of its buffer) against
//! `Aead::seal_in_place` alone, and the server reading it (address lookup, the standard's
//! checks, the replay window, decryption straight into its outbox) against `Aead::open`
//! alone, both looking the address up and told the slot, as the secure link calls it. Run with `cargo test --release secure_cost -- --nocapture`;
//! it asserts only that every packet was delivered.

use super::*;
use crate::crypto::cost::{Best, BATCHES, PER_BATCH};
use crate::crypto::Aead;
use crate::netcode::packet::{sequence_nonce, PAYLOAD_HEADROOM};

#[test]
fn secure_cost_of_a_payload_packet_around_the_aead() {
    // 1120 bytes: about what a datagram of 16 of the net bench's commands carries.
    const LEN: usize = 1120;
    let mut net = Net::new(server(2));
    net.add_client(c(1), &token(&Spec::default()));
    net.connect(0);
    net.collect();
    let (now, unix) = (net.now, net.unix());
    let payload: Vec<u8> = (0..LEN).map(|i| i as u8).collect();
    let mut packets: Vec<Vec<u8>> = (0..PER_BATCH)
        .map(|_| Vec::with_capacity(PAYLOAD_HEADROOM + LEN + 16))
        .collect();
    let mut out = Outbox::new();
    let [mut seal, mut receive, mut hinted, mut bare_seal, mut bare_open] = [Best::default(); 5];
    let mut aead = Aead::new().unwrap();
    let key = crate::crypto::Key::from_bytes([9; 32]);
    let aad = [0x4e; 22];
    let mut bare = payload.clone();
    let mut plain_out = vec![0u8; LEN];
    let mut delivered = 0u64;
    for _ in 0..BATCHES {
        for p in &mut packets {
            p.clear();
            p.resize(PAYLOAD_HEADROOM, 0);
            p.extend_from_slice(&payload);
        }
        let client = &mut net.peers[0].client;
        seal.batch(PER_BATCH, |i| {
            client
                .seal_payload(now, &mut packets[i as usize], PAYLOAD_HEADROOM)
                .unwrap();
        });
        let server = &mut net.server;
        receive.batch(PER_BATCH, |i| {
            out.clear();
            server.receive(now, unix, c(1), &packets[i as usize], None, &mut out);
            delivered += out.events().len() as u64;
        });
        // The same packets again through the secure link's entry, told the slot: each is now a
        // replay, dropped after the replay check, so they are sealed afresh first.
        for p in &mut packets {
            p.clear();
            p.resize(PAYLOAD_HEADROOM, 0);
            p.extend_from_slice(&payload);
            net.peers[0].client.seal_payload(now, p, PAYLOAD_HEADROOM).unwrap();
        }
        let server = &mut net.server;
        hinted.batch(PER_BATCH, |i| {
            out.clear();
            server.receive(now, unix, c(1), &packets[i as usize], Some(0), &mut out);
            delivered += out.events().len() as u64;
        });
        let mut tag = [0u8; 16];
        bare_seal.batch(PER_BATCH, |i| {
            tag = aead
                .seal_in_place(&key, &sequence_nonce(i as u64), &aad, &mut bare)
                .unwrap();
        });
        let n = sequence_nonce(PER_BATCH as u64 - 1);
        bare_open.batch(PER_BATCH, |_| {
            aead.open(&key, &n, &aad, &bare, &tag, &mut plain_out).unwrap()
        });
    }
    assert_eq!(
        delivered,
        2 * (BATCHES * PER_BATCH) as u64,
        "every payload packet delivered"
    );
    assert_eq!(net.server.stats().dropped_total(), 0);
    println!("a {LEN}-byte payload packet, ns on the CPU (best of {BATCHES} batches of {PER_BATCH}):");
    println!(
        "  client seal_payload {:>5.0}  Aead::seal_in_place {:>5.0}  netcode adds {:>4.0}",
        seal.cpu_ns,
        bare_seal.cpu_ns,
        seal.cpu_ns - bare_seal.cpu_ns
    );
    println!(
        "  server receive      {:>5.0}  Aead::open          {:>5.0}  netcode adds {:>4.0}",
        receive.cpu_ns,
        bare_open.cpu_ns,
        receive.cpu_ns - bare_open.cpu_ns
    );
    println!(
        "  receive, told slot  {:>5.0}  (as the secure link calls it)  netcode adds {:>4.0}",
        hinted.cpu_ns,
        hinted.cpu_ns - bare_open.cpu_ns
    );
}

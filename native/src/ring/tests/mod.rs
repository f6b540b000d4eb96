//! Tests of the ring, one file per concern, including a two-process stress test.

mod corruption;
mod fragments;
mod layout;
mod records;
mod restarts;
mod stress;

use super::*;
use crate::shm::Region;
use std::time::{Duration, Instant};

/// Small, seedable PRNG (xorshift64*), so failures can be replayed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A seed from TSAGE_RING_SEED or the clock, printed so a failure can be replayed.
fn seed(test: &str) -> u64 {
    let seed = std::env::var("TSAGE_RING_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("{test}: seed {seed} (rerun with TSAGE_RING_SEED={seed})");
    seed
}

fn new_ring(capacity: usize, max_record: usize) -> (Region, Ring) {
    let region = Region::create(region_len(capacity)).unwrap();
    // SAFETY: the region is fresh, ours, and outlives the Ring in every test.
    let ring = unsafe { Ring::init(region.as_ptr(), region.len(), capacity, max_record) }.unwrap();
    (region, ring)
}

fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut r = Rng::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ len as u64);
    (0..len).map(|_| r.next() as u8).collect()
}

/// Everything the consumer can hand out now, as (kind, payload); runs are released.
fn drain(c: &mut Consumer) -> Vec<(u32, Vec<u8>)> {
    let mut out = Vec::new();
    loop {
        match c.poll().unwrap() {
            Polled::Empty => return out,
            Polled::Message { kind, data } => out.push((kind, data)),
            Polled::Records { offset, len } => {
                for r in c.ring().records(offset, len) {
                    let r = r.unwrap();
                    out.push((r.kind, c.ring().copy_out(r.offset, r.len).unwrap()));
                }
                c.release(len).unwrap();
            }
        }
    }
}

/// Writes a raw u32 into the data area at data offset `off` (test-only tampering).
fn poke_u32(ring: &Ring, off: usize, v: u32) {
    ring.data_u32(off).store(v, std::sync::atomic::Ordering::Relaxed);
}

fn stream_message(p: &mut Producer, c: &mut Consumer, kind: u32, data: &[u8]) -> Vec<u8> {
    let mut progress = 0;
    let mut got = None;
    let mut rounds = 0;
    while got.is_none() {
        if progress < data.len() {
            progress = p.write_fragments(kind, data, progress).unwrap();
        }
        for (k, m) in drain(c) {
            assert_eq!(k, kind);
            assert!(got.is_none());
            got = Some(m);
        }
        rounds += 1;
        assert!(rounds < 1_000_000, "no progress");
    }
    assert_eq!(progress, data.len());
    got.unwrap()
}

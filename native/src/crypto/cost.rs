//! What one ChaCha20-Poly1305 seal and open of a 1200-byte packet costs:
//! [`Aead`] against the raw OpenSSL call sequence done the minimal way, and
//! against the bulk update alone (what `openssl speed -evp
//! chacha20-poly1305` times: on OpenSSL 3.0.19 with or without `-aead`, whose
//! rate at 16 bytes shows no per-message work). Run with
//! `cargo test --release secure_cost -- --nocapture`; docs/netcode.md quotes it.
//!
//! The machine is shared, so each variant is timed in short batches,
//! interleaved with the others, and the best batch counts: both on the
//! thread's CPU clock (what `openssl speed` divides by, its user time) and on
//! the wall clock (what a loaded machine adds: time spent waiting for a CPU).
//! The tests assert only that every variant computed the same bytes.

use std::ffi::c_int;
use std::time::Instant;

use super::raw::Raw;
use super::{Aead, Key, NONCE_BYTES};

/// `struct timespec` on 64-bit Linux.
#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

/// `CLOCK_THREAD_CPUTIME_ID` on Linux.
const CLOCK_THREAD_CPUTIME_ID: c_int = 3;

extern "C" {
    fn clock_gettime(clock: c_int, ts: *mut Timespec) -> c_int;
}

/// This thread's time on a CPU, in ns.
pub(crate) fn thread_cpu_ns() -> u64 {
    let mut ts = Timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid, writable timespec of the layout this target's libc uses.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The best (lowest) per-operation time of one variant over its batches.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Best {
    pub cpu_ns: f64,
    pub wall_ns: f64,
}

impl Default for Best {
    fn default() -> Self {
        Best {
            cpu_ns: f64::INFINITY,
            wall_ns: f64::INFINITY,
        }
    }
}

impl Best {
    /// Runs `op` `n` times as one batch and keeps the better per-op times.
    pub(crate) fn batch(&mut self, n: u32, mut op: impl FnMut(u32)) {
        let (c0, w0) = (thread_cpu_ns(), Instant::now());
        for i in 0..n {
            op(i);
        }
        let wall = w0.elapsed().as_nanos() as f64 / n as f64;
        let cpu = (thread_cpu_ns() - c0) as f64 / n as f64;
        self.cpu_ns = self.cpu_ns.min(cpu);
        self.wall_ns = self.wall_ns.min(wall);
    }
}

/// Batches per variant.
pub(crate) const BATCHES: u32 = 25;
/// Operations per batch.
pub(crate) const PER_BATCH: u32 = 1_000;

fn nonce(i: u64) -> [u8; NONCE_BYTES] {
    let mut n = [0u8; NONCE_BYTES];
    n[4..].copy_from_slice(&i.to_le_bytes());
    n
}

#[test]
fn secure_cost_of_seal_and_open_at_1200_bytes_against_raw_openssl() {
    let key = Key::from_bytes(std::array::from_fn(|i| i as u8 * 7 + 1));
    let other = Key::from_bytes(std::array::from_fn(|i| i as u8 * 5 + 2));
    let aad = [0x4e; 22];
    let plain = vec![0x5au8; 1200];
    let mut aead = Aead::new().unwrap();
    let (mut raw_seal, mut raw_open) = (Raw::new(&key, 1), Raw::new(&key, 0));
    let mut bulk = Raw::new(&key, 1);
    bulk.run(&nonce(0), &aad, &mut plain.clone());
    let mut best = [Best::default(); 7];
    // Each pair restores its buffer; the lone seals run over a scratch buffer; the lone open
    // reads one authentic packet per batch again and again, out of place.
    let (mut a, mut b, mut c, mut junk) = (plain.clone(), plain.clone(), plain.clone(), plain.clone());
    let (mut ct, mut out) = (plain.clone(), vec![0u8; 1200]);
    let (mut raw_tags, mut our_tags) = (Vec::new(), Vec::new());
    for batch in 0..BATCHES as u64 {
        let s0 = batch * PER_BATCH as u64;
        best[0].batch(PER_BATCH, |i| {
            let n = nonce(s0 + i as u64);
            let tag = raw_seal.seal(&n, &aad, &mut a);
            assert!(raw_open.open(&n, &aad, &mut a, &tag));
            if i == 0 {
                raw_tags.push(tag);
            }
        });
        best[1].batch(PER_BATCH, |i| {
            let n = nonce(s0 + i as u64);
            let tag = aead.seal_in_place(&key, &n, &aad, &mut b).unwrap();
            aead.open_in_place(&key, &n, &aad, &mut b, &tag).unwrap();
            if i == 0 {
                our_tags.push(tag);
            }
        });
        best[2].batch(PER_BATCH, |i| {
            raw_seal.seal(&nonce(s0 + i as u64), &aad, &mut junk);
        });
        best[3].batch(PER_BATCH, |i| {
            aead.seal_in_place(&key, &nonce(s0 + i as u64), &aad, &mut junk)
                .unwrap();
        });
        ct.copy_from_slice(&plain);
        let n = nonce(1 << 40 | batch);
        let tag = aead.seal_in_place(&key, &n, &aad, &mut ct).unwrap();
        best[4].batch(PER_BATCH, |_| aead.open(&key, &n, &aad, &ct, &tag, &mut out).unwrap());
        assert_eq!(out, plain, "the lone open decrypts");
        best[5].batch(PER_BATCH, |_| bulk.update_only(&mut junk));
        best[6].batch(PER_BATCH, |i| {
            let k = if i & 1 == 0 { &key } else { &other };
            let n = nonce(s0 + i as u64);
            let tag = aead.seal_in_place(k, &n, &aad, &mut c).unwrap();
            aead.open_in_place(k, &n, &aad, &mut c, &tag).unwrap();
        });
    }
    assert_eq!(raw_tags, our_tags, "Aead and the raw sequence compute the same tags");
    assert!(
        [&a, &b, &c].iter().all(|x| **x == plain),
        "every seal/open pair restores the plaintext"
    );
    let names = [
        "raw OpenSSL seal+open (one update)",
        "Aead seal_in_place+open_in_place",
        "raw OpenSSL seal",
        "Aead seal_in_place",
        "Aead open (out of place, as read_packet)",
        "EVP_CipherUpdate alone (openssl speed)",
        "Aead seal+open, two keys in turn",
    ];
    let per_op = [2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 2.0];
    println!("ChaCha20-Poly1305 at 1200 bytes, best of {BATCHES} batches of {PER_BATCH} (ns):");
    println!(
        "  {:<44} {:>8} {:>8} {:>10}",
        "variant", "cpu/call", "wall", "cpu/AEAD op"
    );
    for ((name, b), k) in names.iter().zip(best).zip(per_op) {
        println!(
            "  {name:<44} {:>8.0} {:>8.0} {:>10.0}",
            b.cpu_ns,
            b.wall_ns,
            b.cpu_ns / k
        );
    }
}

#[test]
fn secure_cost_of_seal_and_open_by_length_in_one_update_and_in_chunks() {
    let key = Key::from_bytes([0x33; 32]);
    let aad = [0x4e; 22];
    let mut aead = Aead::new().unwrap();
    let (mut raw_seal, mut raw_open) = (Raw::new(&key, 1), Raw::new(&key, 0));
    println!(
        "seal+open (ns on the CPU, best of {BATCHES} batches of {}):",
        PER_BATCH / 2
    );
    println!("  {:>6} {:>12} {:>12} {:>7}", "bytes", "one update", "Aead", "change");
    for len in [64, 512, 1000, 1024, 1100, 1120, 1175, 1200, 1500, 2048, 2100] {
        let plain = vec![0xa5u8; len];
        let (mut a, mut b) = (plain.clone(), plain.clone());
        let (mut one, mut ours) = (Best::default(), Best::default());
        for batch in 0..BATCHES as u64 {
            let s0 = batch * PER_BATCH as u64;
            one.batch(PER_BATCH / 2, |i| {
                let n = nonce(s0 + i as u64);
                let tag = raw_seal.seal(&n, &aad, &mut a);
                assert!(raw_open.open(&n, &aad, &mut a, &tag));
            });
            ours.batch(PER_BATCH / 2, |i| {
                let n = nonce(s0 + i as u64);
                let tag = aead.seal_in_place(&key, &n, &aad, &mut b).unwrap();
                aead.open_in_place(&key, &n, &aad, &mut b, &tag).unwrap();
            });
        }
        assert!(a == plain && b == plain, "{len}: every pair restores the plaintext");
        let change = 100.0 * (ours.cpu_ns - one.cpu_ns) / one.cpu_ns;
        println!("  {len:>6} {:>12.0} {:>12.0} {change:>+6.0}%", one.cpu_ns, ours.cpu_ns);
    }
}

#[test]
fn secure_cost_of_each_step_of_a_seal_at_the_sizes_of_a_datagram_and_an_ack() {
    // Where a seal's time goes: each row adds one EVP call to the one above, so the difference
    // is that call's cost. The body is fed as `Aead` feeds it (1024 bytes and the rest).
    let key = Key::from_bytes([0x21; 32]);
    let aad = [0x4e; 22];
    let mut raw = Raw::new(&key, 1);
    let lens = [40usize, 1024, 1120, 1192, 1200];
    let mut best = vec![[Best::default(); 6]; lens.len()];
    for batch in 0..BATCHES as u64 {
        for (l, &len) in lens.iter().enumerate() {
            let mut buf = vec![0x3cu8; len];
            for steps in 0..6u32 {
                let s0 = (batch * 6 + steps as u64) * PER_BATCH as u64;
                best[l][steps as usize].batch(PER_BATCH, |i| {
                    raw.seal_steps(&nonce(s0 + i as u64), &aad, &mut buf, steps)
                });
            }
        }
    }
    let names = [
        "EVP_CipherInit_ex (the nonce)",
        "EVP_CipherUpdate (22 bytes of associated data)",
        "EVP_CipherUpdate (the body, 1024 + rest)",
        "EVP_CipherFinal_ex",
        "EVP_CIPHER_CTX_ctrl (get the tag)",
    ];
    println!("one seal, step by step (ns on the CPU added by each call, best of {BATCHES} batches of {PER_BATCH}):");
    print!("  {:<48}", "bytes");
    for len in lens {
        print!(" {len:>6}");
    }
    println!();
    for (k, name) in names.iter().enumerate() {
        print!("  {name:<48}");
        for b in &best {
            print!(" {:>6.0}", b[k + 1].cpu_ns - b[k].cpu_ns);
        }
        println!();
    }
    print!("  {:<48}", "the whole seal");
    for b in &best {
        print!(" {:>6.0}", b[5].cpu_ns - b[0].cpu_ns);
    }
    println!();
}

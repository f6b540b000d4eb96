//! Tests of the ring, including a two-process stress test.

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

// ---------------------------------------------------------------- init/attach

#[test]
fn should_attach_to_initialised_ring_with_same_geometry() {
    let (region, ring) = new_ring(8192, 1024);
    // SAFETY: the region outlives the attached view.
    let other = unsafe { Ring::attach(region.as_ptr(), region.len()) }.unwrap();
    assert_eq!(other.capacity(), 8192);
    assert_eq!(other.max_record(), 1024);
    assert_eq!(other.creator_pid(), std::process::id());
    assert_eq!(ring.head(), 0);
    assert_eq!(ring.tail(), 0);
    let mut b = [0u8; 8];
    // SAFETY: the header is 512 bytes of a region we own; read-only copy.
    unsafe { std::ptr::copy_nonoverlapping(region.as_ptr(), b.as_mut_ptr(), 8) };
    assert_eq!(&b, b"TSAGRING");
}

#[test]
fn should_refuse_attach_to_short_zeroed_garbage_or_unversioned_region() {
    let region = Region::create(region_len(4096)).unwrap();
    let base = region.as_ptr();
    // SAFETY: every attach below reads within the region, which outlives it.
    unsafe {
        assert_eq!(
            Ring::attach(base, 100).unwrap_err(),
            RingError::TooShort {
                len: 100,
                needed: DATA_OFFSET
            }
        );
        assert_eq!(Ring::attach(base, region.len()).unwrap_err(), RingError::NotInitialised);
        assert_eq!(
            Ring::attach(base.add(4), region.len() - 4).unwrap_err(),
            RingError::Misaligned
        );
        std::ptr::write_bytes(base, 0xAB, DATA_OFFSET);
        assert!(matches!(Ring::attach(base, region.len()), Err(RingError::BadMagic(_))));
    }
    // SAFETY: fresh init over the garbage, then tampering through the atomics.
    let ring = unsafe { Ring::init(base, region.len(), 4096, 256) }.unwrap();
    ring.u32_at(VERSION_OFFSET)
        .store(0, std::sync::atomic::Ordering::Relaxed);
    // SAFETY: as above.
    let err = unsafe { Ring::attach(base, region.len()) }.unwrap_err();
    assert_eq!(err, RingError::NotInitialised);
    ring.u32_at(VERSION_OFFSET)
        .store(7, std::sync::atomic::Ordering::Relaxed);
    // SAFETY: as above.
    let err = unsafe { Ring::attach(base, region.len()) }.unwrap_err();
    assert_eq!(err, RingError::BadVersion(7));
    ring.u32_at(VERSION_OFFSET)
        .store(VERSION, std::sync::atomic::Ordering::Relaxed);
    ring.u64_at(CAPACITY_OFFSET)
        .store(5000, std::sync::atomic::Ordering::Relaxed);
    // SAFETY: as above.
    let err = unsafe { Ring::attach(base, region.len()) }.unwrap_err();
    assert_eq!(err, RingError::BadCapacity(5000));
    ring.u64_at(CAPACITY_OFFSET)
        .store(1 << 20, std::sync::atomic::Ordering::Relaxed);
    // SAFETY: as above.
    let err = unsafe { Ring::attach(base, region.len()) }.unwrap_err();
    assert!(matches!(err, RingError::TooShort { .. }), "{err}");
    ring.u64_at(CAPACITY_OFFSET)
        .store(4096, std::sync::atomic::Ordering::Relaxed);
    ring.u64_at(MAX_RECORD_OFFSET)
        .store(4096, std::sync::atomic::Ordering::Relaxed);
    // SAFETY: as above.
    let err = unsafe { Ring::attach(base, region.len()) }.unwrap_err();
    assert_eq!(err, RingError::BadMaxRecord(4096));
}

#[test]
fn should_refuse_init_with_bad_capacity_or_max_record() {
    let region = Region::create(region_len(1 << 16)).unwrap();
    let (base, len) = (region.as_ptr(), region.len());
    // SAFETY: each init fails before writing, or writes inside the region.
    unsafe {
        assert_eq!(
            Ring::init(base, len, 3000, 64).unwrap_err(),
            RingError::BadCapacity(3000)
        );
        assert_eq!(
            Ring::init(base, len, 2048, 64).unwrap_err(),
            RingError::BadCapacity(2048)
        );
        assert!(matches!(
            Ring::init(base, len, 1 << 17, 64).unwrap_err(),
            RingError::TooShort { .. }
        ));
        assert_eq!(Ring::init(base, len, 4096, 8).unwrap_err(), RingError::BadMaxRecord(8));
        assert_eq!(
            Ring::init(base, len, 4096, 2041).unwrap_err(),
            RingError::BadMaxRecord(2041)
        );
        assert!(Ring::init(base, len, 4096, 2040).is_ok());
    }
}

// ------------------------------------------------------------ wrap and padding

#[test]
fn should_pad_record_at_wrap() {
    let (_region, ring) = new_ring(4096, 2040);
    let mut p = Producer::new(ring.clone()).unwrap();
    let mut c = Consumer::new(ring.clone(), 1 << 20).unwrap();
    // 4080 bytes of records: 255 records of 8-byte payload (16 bytes each).
    for i in 0..255u64 {
        assert!(p.try_write(16, &i.to_ne_bytes()).unwrap());
    }
    p.publish();
    assert_eq!(drain(&mut c).len(), 255);
    assert_eq!(p.head(), 4080);
    // 16 bytes remain before the end; a 24-byte record must wrap.
    assert!(p.try_write(17, b"sixteen bytes!!!").unwrap());
    p.publish();
    let (len, kind) = ring.read_header(4080);
    assert_eq!((len, kind), (8, KIND_PADDING));
    assert_eq!(ring.read_header(0), (16, 17));
    assert_eq!(p.head(), 4096 + 24);
    assert_eq!(
        c.poll().unwrap(),
        Polled::Records {
            offset: DATA_OFFSET,
            len: 24
        }
    );
    assert_eq!(c.tail(), 4096, "padding released by poll");
    c.release(24).unwrap();
    assert_eq!(ring.tail(), 4096 + 24);
}

#[test]
fn should_keep_advanced_records_unpublished_until_publish() {
    let (_region, ring) = new_ring(4096, 2040);
    let mut p = Producer::new(ring.clone()).unwrap();
    let mut c = Consumer::new(ring.clone(), 1 << 20).unwrap();
    let (off, _) = p.claim(16).unwrap().unwrap();
    ring.write_header(off - DATA_OFFSET, 8, 16);
    p.advance(16).unwrap();
    assert_eq!(c.poll().unwrap(), Polled::Empty, "advanced but not published");
    // The advanced record's space is not handed out again.
    let (off2, _) = p.claim(16).unwrap().unwrap();
    assert_eq!(off2, off + 16);
    p.commit(0).unwrap();
    assert_eq!(
        c.poll().unwrap(),
        Polled::Records {
            offset: DATA_OFFSET,
            len: 16
        }
    );
}

#[test]
fn should_carry_varied_records_around_the_wrap_many_times() {
    let seed = seed("should_carry_varied_records_around_the_wrap_many_times");
    let mut rng = Rng::new(seed);
    let (_region, ring) = new_ring(4096, 1000);
    let mut p = Producer::new(ring.clone()).unwrap();
    let mut c = Consumer::new(ring.clone(), 1 << 20).unwrap();
    let (mut sent, mut got) = (0u64, 0u64);
    let mut paddings = 0;
    while got < 20_000 {
        for _ in 0..rng.below(20) {
            let len = if rng.below(4) == 0 {
                rng.below(1001)
            } else {
                rng.below(40)
            };
            let before = p.head();
            if !p.try_write(16 + (sent % 5) as u32, &pattern(sent, len)).unwrap() {
                break;
            }
            if p.head() - before > record_size(len) as u64 {
                paddings += 1;
            }
            sent += 1;
        }
        if rng.below(3) != 0 {
            p.publish();
        }
        // Consume part of what is there, sometimes only part of a run.
        if let Polled::Records { offset, len } = c.poll().unwrap() {
            let mut take = 0;
            for r in ring.records(offset, len) {
                let r = r.unwrap();
                assert_eq!(r.kind, 16 + (got % 5) as u32);
                assert_eq!(ring.copy_out(r.offset, r.len).unwrap(), pattern(got, r.len));
                got += 1;
                take = r.offset + align8(r.len) - offset;
                if rng.below(8) == 0 {
                    break;
                }
            }
            c.release(take).unwrap();
        }
        assert!(p.head() - ring.tail() <= 4096);
    }
    assert!(paddings > 100, "only {paddings} wraps padded");
}

// ------------------------------------------------------------------------ full

#[test]
fn should_refuse_writes_when_full_and_accept_after_release() {
    let (_region, ring) = new_ring(4096, 1024);
    let mut p = Producer::new(ring.clone()).unwrap();
    let mut c = Consumer::new(ring.clone(), 1 << 20).unwrap();
    let mut n = 0u64;
    while p.try_write(16, &[n as u8; 56]).unwrap() {
        n += 1;
    }
    assert_eq!(n, 64, "4096 bytes / 64-byte records");
    assert_eq!(p.claim(8).unwrap(), None);
    assert_eq!(p.free_bytes(), 0);
    p.publish();
    let Polled::Records { offset, len } = c.poll().unwrap() else {
        panic!("expected records");
    };
    assert_eq!(len, 4096);
    // The producer keeps failing while nothing is released; data stays intact.
    for _ in 0..10 {
        assert!(!p.try_write(16, &[0xFF; 56]).unwrap());
    }
    for (i, r) in ring.records(offset, len).enumerate() {
        assert_eq!(ring.copy_out(r.unwrap().offset, 56).unwrap(), vec![i as u8; 56]);
    }
    c.release(128).unwrap();
    assert_eq!(p.free_bytes(), 128);
    assert!(p.try_write(16, &[1; 56]).unwrap());
    assert!(p.try_write(16, &[2; 56]).unwrap());
    assert!(!p.try_write(16, &[3; 56]).unwrap());
    p.publish();
    let rest: Vec<_> = drain(&mut c);
    assert_eq!(rest.len(), 62 + 2);
    assert_eq!(rest[0].1, vec![2u8; 56]);
    assert_eq!(rest[62].1, vec![1u8; 56]);
}

#[test]
fn should_never_overwrite_unreleased_records_under_concurrent_producer() {
    let (_region, ring) = new_ring(8192, 512);
    let mut p = Producer::new(ring.clone()).unwrap();
    let mut c = Consumer::new(ring.clone(), 1 << 20).unwrap();
    const N: u64 = 2_000_000;
    let writer = std::thread::spawn(move || {
        let mut i = 0u64;
        while i < N {
            let len = 8 + (i % 13) as usize * 8;
            let mut buf = vec![0u8; len];
            for chunk in buf.chunks_mut(8) {
                chunk.copy_from_slice(&i.to_ne_bytes());
            }
            if p.try_write(16, &buf).unwrap() {
                i += 1;
                if i.is_multiple_of(16) {
                    p.publish();
                }
            } else {
                p.publish();
                std::thread::yield_now();
            }
        }
        p.publish();
    });
    let mut next = 0u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while next < N {
        assert!(Instant::now() < deadline, "timed out at {next}");
        match c.poll().unwrap() {
            Polled::Records { offset, len } => {
                for r in ring.records(offset, len) {
                    let r = r.unwrap();
                    assert_eq!(r.len, 8 + (next % 13) as usize * 8);
                    for k in 0..r.len / 8 {
                        assert_eq!(ring.read_u64(r.offset + 8 * k).unwrap(), next);
                    }
                    next += 1;
                }
                c.release(len).unwrap();
            }
            Polled::Empty => std::thread::yield_now(),
            Polled::Message { .. } => panic!("no fragments were sent"),
        }
    }
    writer.join().unwrap();
}

#[test]
fn should_reject_oversized_records_and_claims() {
    let (_region, ring) = new_ring(4096, 100);
    let mut p = Producer::new(ring).unwrap();
    assert_eq!(
        p.try_write(16, &[0; 101]).unwrap_err(),
        RingError::TooLarge { len: 101, max: 100 }
    );
    assert!(p.try_write(16, &[0; 100]).unwrap());
    assert!(matches!(p.try_write(3, &[]), Err(RingError::Invalid(_))));
    assert_eq!(p.claim(2049).unwrap_err(), RingError::TooLarge { len: 2049, max: 2048 });
    assert!(p.claim(2048).unwrap().is_some());
}

// ------------------------------------------------------- claim/commit in place

#[test]
fn should_publish_records_written_in_place_on_commit() {
    let (region, ring) = new_ring(4096, 1024);
    let mut p = Producer::new(ring.clone()).unwrap();
    let mut c = Consumer::new(ring.clone(), 1 << 20).unwrap();
    let (off, span) = p.claim(64).unwrap().unwrap();
    assert_eq!((off, span), (DATA_OFFSET, 4096));
    // Write two records the way the TypeScript side does: raw bytes at the span.
    let mut bytes = Vec::new();
    for (kind, payload) in [(16u32, &b"hello"[..]), (17, &b"schema!!"[..])] {
        bytes.extend_from_slice(&(payload.len() as u32).to_ne_bytes());
        bytes.extend_from_slice(&kind.to_ne_bytes());
        bytes.extend_from_slice(payload);
        bytes.resize(align8(bytes.len()), 0);
    }
    // SAFETY: the span off..off+span is inside the region and claimed by us.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), region.as_ptr().add(off), bytes.len()) };
    assert_eq!(c.poll().unwrap(), Polled::Empty, "nothing before commit");
    p.commit(bytes.len()).unwrap();
    assert_eq!(ring.head(), 32);
    assert_eq!(drain(&mut c), vec![(16, b"hello".to_vec()), (17, b"schema!!".to_vec())]);
}

#[test]
fn should_reject_commit_of_malformed_records() {
    let (_region, ring) = new_ring(4096, 64);
    let mut p = Producer::new(ring.clone()).unwrap();
    assert!(matches!(p.commit(8), Err(RingError::Invalid(_))), "no claim");
    let (off, _) = p.claim(64).unwrap().unwrap();
    let d = off - DATA_OFFSET;
    assert!(matches!(p.commit(12), Err(RingError::Invalid(_))));
    poke_u32(&ring, d, 20);
    poke_u32(&ring, d + 4, 16);
    assert!(matches!(p.commit(24), Err(RingError::Invalid(_))), "record overruns");
    poke_u32(&ring, d + 4, 5);
    assert!(matches!(p.commit(32), Err(RingError::Invalid(_))), "reserved kind");
    poke_u32(&ring, d, 65);
    poke_u32(&ring, d + 4, 16);
    assert!(matches!(p.commit(80), Err(RingError::TooLarge { .. })));
    assert_eq!(ring.head(), 0, "nothing published");
    poke_u32(&ring, d, 20);
    p.commit(32).unwrap();
    assert_eq!(ring.head(), 32);
}

// ------------------------------------------------------------------ fragments

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

#[test]
fn should_reassemble_fragmented_messages_from_1_byte_to_16_mib() {
    for (capacity, max_record) in [(1 << 16, 4096), (1 << 20, 1 << 16), (1 << 16, 16)] {
        let (_region, ring) = new_ring(capacity, max_record);
        let mut p = Producer::new(ring.clone()).unwrap();
        let mut c = Consumer::new(ring.clone(), 16 << 20).unwrap();
        let sizes: &[usize] = if max_record == 16 {
            &[1, 7, 8, 9, 100, 5000]
        } else {
            &[1, 7, 8, 100, 4095, 4096, 65_536, (1 << 20) + 5, 3 << 20, 16 << 20]
        };
        for &n in sizes {
            let data = pattern(n as u64, n);
            let got = stream_message(&mut p, &mut c, 20, &data);
            assert!(got == data, "{n}-byte message through {capacity}/{max_record} differs");
        }
    }
}

#[test]
fn should_deliver_user_records_written_between_fragments() {
    let (_region, ring) = new_ring(4096, 256);
    let mut p = Producer::new(ring.clone()).unwrap();
    let mut c = Consumer::new(ring.clone(), 1 << 20).unwrap();
    let data = pattern(9, 10_000);
    let mut progress = 0;
    let mut got = Vec::new();
    let mut i = 0u8;
    while progress < data.len() {
        progress = p.write_fragments(30, &data, progress).unwrap();
        if p.try_write(16, &[i]).unwrap() {
            i += 1;
        }
        p.publish();
        got.extend(drain(&mut c));
    }
    got.extend(drain(&mut c));
    let smalls: Vec<_> = got.iter().filter(|(k, _)| *k == 16).collect();
    assert_eq!(smalls.len(), i as usize);
    for (n, (_, d)) in smalls.iter().enumerate() {
        assert_eq!(d, &vec![n as u8]);
    }
    let big: Vec<_> = got.iter().filter(|(k, _)| *k == 30).collect();
    assert_eq!(big.len(), 1);
    assert!(big[0].1 == data);
}

#[test]
fn should_stream_16_mib_message_between_threads_through_64_kib_ring() {
    let (_region, ring) = new_ring(1 << 16, 8192);
    let mut p = Producer::new(ring.clone()).unwrap();
    let mut c = Consumer::new(ring.clone(), 16 << 20).unwrap();
    let data = pattern(16, 16 << 20);
    let expect = data.clone();
    let writer = std::thread::spawn(move || {
        let mut progress = 0;
        while progress < data.len() {
            progress = p.write_fragments(99, &data, progress).unwrap();
            std::thread::yield_now();
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let got = loop {
        assert!(Instant::now() < deadline, "timed out");
        match c.poll().unwrap() {
            Polled::Message { kind, data } => {
                assert_eq!(kind, 99);
                break data;
            }
            Polled::Empty => std::thread::yield_now(),
            other => panic!("unexpected {other:?}"),
        }
    };
    writer.join().unwrap();
    assert!(got == expect);
}

/// Publishes one hand-made record of `kind` with `payload`.
fn put_raw(p: &mut Producer, kind: u32, payload: &[u8]) {
    let size = record_size(payload.len());
    let (off, _) = p.claim(size).unwrap().unwrap();
    let ring = p.ring().clone();
    let d = off - DATA_OFFSET;
    ring.write_data(d + RECORD_HEADER, payload);
    ring.write_header(d, payload.len() as u32, kind);
    p.commit(size).unwrap();
}

fn first_payload(total: u32, kind: u32, chunk: &[u8]) -> Vec<u8> {
    let mut v = total.to_ne_bytes().to_vec();
    v.extend_from_slice(&kind.to_ne_bytes());
    v.extend_from_slice(chunk);
    v
}

#[test]
fn should_report_middle_without_first_as_corrupt() {
    let (_region, ring) = new_ring(4096, 256);
    let mut p = Producer::new(ring.clone()).unwrap();
    let mut c = Consumer::new(ring.clone(), 1 << 20).unwrap();
    put_raw(&mut p, KIND_FRAG_MIDDLE, b"orphan");
    assert!(matches!(c.poll(), Err(RingError::Corrupt(_))));
    assert!(matches!(c.poll(), Err(RingError::Corrupt(_))), "sticky");
    assert_eq!(ring.tail(), 0);
}

#[test]
fn should_report_fragment_total_over_max_as_too_large() {
    let (_region, ring) = new_ring(4096, 256);
    let mut p = Producer::new(ring.clone()).unwrap();
    let mut c = Consumer::new(ring.clone(), 1000).unwrap();
    put_raw(&mut p, KIND_FRAG_FIRST, &first_payload(1001, 16, b"abc"));
    assert_eq!(c.poll().unwrap_err(), RingError::TooLarge { len: 1001, max: 1000 });
}

#[test]
fn should_report_inconsistent_fragments_as_corrupt() {
    type Case = &'static [(u32, &'static [u8])];
    let cases: &[Case] = &[
        // LAST that does not complete the message.
        &[
            (KIND_FRAG_FIRST, &[10, 0, 0, 0, 16, 0, 0, 0, 1]),
            (KIND_FRAG_LAST, b"ab"),
        ],
        // MIDDLE that overruns the total.
        &[
            (KIND_FRAG_FIRST, &[3, 0, 0, 0, 16, 0, 0, 0, 1]),
            (KIND_FRAG_MIDDLE, b"abcd"),
        ],
        // MIDDLE that completes the message (must be LAST).
        &[
            (KIND_FRAG_FIRST, &[3, 0, 0, 0, 16, 0, 0, 0, 1]),
            (KIND_FRAG_MIDDLE, b"ab"),
        ],
        // FIRST shorter than its header, or carrying a non-user kind.
        &[(KIND_FRAG_FIRST, &[3, 0, 0, 0])],
        &[(KIND_FRAG_FIRST, &[3, 0, 0, 0, 2, 0, 0, 0, 1])],
        // FIRST whose chunk exceeds its total.
        &[(KIND_FRAG_FIRST, &[1, 0, 0, 0, 16, 0, 0, 0, 1, 2])],
        // A reserved kind (published as 16, then changed).
        &[(16, b"x")],
    ];
    for (i, case) in cases.iter().enumerate() {
        let (_region, ring) = new_ring(4096, 256);
        let mut p = Producer::new(ring.clone()).unwrap();
        let mut c = Consumer::new(ring.clone(), 1 << 20).unwrap();
        for (kind, payload) in case.iter() {
            // Payload bytes above are little-endian.
            put_raw(&mut p, *kind, payload);
        }
        if case.len() == 1 && case[0].0 == 16 {
            poke_u32(&ring, 4, 9);
        }
        let r = c.poll().and_then(|_| c.poll());
        assert!(matches!(r, Err(RingError::Corrupt(_))), "case {i}: {r:?}");
    }
}

// -------------------------------------------------------------------- restarts

#[test]
fn should_continue_from_published_head_after_producer_restart() {
    let (_region, ring) = new_ring(4096, 256);
    let mut c = Consumer::new(ring.clone(), 1 << 20).unwrap();
    let mut seq = 0u64;
    let mut got = Vec::new();
    for round in 0..200 {
        let mut p = Producer::new(ring.clone()).unwrap();
        for _ in 0..(round % 7) {
            assert!(p.try_write(16, &seq.to_ne_bytes()).unwrap());
            seq += 1;
        }
        p.publish();
        // Unpublished records die with the producer.
        assert!(p.try_write(16, &u64::MAX.to_ne_bytes()).unwrap());
        // The producer is abandoned here, as if its process died.
        got.extend(
            drain(&mut c)
                .into_iter()
                .map(|(_, d)| u64::from_ne_bytes(d.try_into().unwrap())),
        );
    }
    assert_eq!(got, (0..seq).collect::<Vec<_>>());
}

#[test]
fn should_continue_from_published_tail_after_consumer_restart() {
    let (_region, ring) = new_ring(4096, 256);
    let mut p = Producer::new(ring.clone()).unwrap();
    let (mut seq, mut got) = (0u64, Vec::new());
    for round in 0..300 {
        while p.try_write(16, &seq.to_ne_bytes()).unwrap() {
            seq += 1;
            if seq.is_multiple_of(11) {
                break;
            }
        }
        p.publish();
        let mut c = Consumer::new(ring.clone(), 1 << 20).unwrap();
        if let Polled::Records { offset, len } = c.poll().unwrap() {
            // Release only part of what was read; the rest must come again.
            let keep = (round % 3) * 16;
            let take = len.saturating_sub(keep);
            for r in ring.records(offset, take) {
                got.push(ring.read_u64(r.unwrap().offset).unwrap());
            }
            c.release(take).unwrap();
        }
    }
    let mut c = Consumer::new(ring.clone(), 1 << 20).unwrap();
    got.extend(
        drain(&mut c)
            .into_iter()
            .map(|(_, d)| u64::from_ne_bytes(d.try_into().unwrap())),
    );
    assert_eq!(got, (0..seq).collect::<Vec<_>>());
}

#[test]
fn should_skip_rest_of_message_after_consumer_restart_mid_fragments() {
    let (_region, ring) = new_ring(4096, 256);
    let mut p = Producer::new(ring.clone()).unwrap();
    let big = pattern(1, 10_000);
    let mut c = Consumer::new(ring.clone(), 1 << 20).unwrap();
    let progress = p.write_fragments(40, &big, 0).unwrap();
    assert!(progress < big.len());
    assert_eq!(c.poll().unwrap(), Polled::Empty, "took fragments in");
    assert_ne!(
        ring.u64_at(CONSUMER_FRAG_OFFSET)
            .load(std::sync::atomic::Ordering::Acquire),
        0
    );
    drop(c);
    let mut progress = progress;
    let mut c = Consumer::new(ring.clone(), 1 << 20).unwrap();
    while progress < big.len() {
        progress = p.write_fragments(40, &big, progress).unwrap();
        assert!(drain(&mut c).is_empty(), "orphans are skipped, not errors");
    }
    assert!(p.try_write(16, b"after").unwrap());
    p.write_fragments(41, b"next", 0).unwrap();
    assert_eq!(drain(&mut c), vec![(16, b"after".to_vec()), (41, b"next".to_vec())]);
    assert_eq!(
        ring.u64_at(CONSUMER_FRAG_OFFSET)
            .load(std::sync::atomic::Ordering::Acquire),
        0
    );
}

#[test]
fn should_discard_unfinished_message_when_restarted_producer_starts_another() {
    let (_region, ring) = new_ring(4096, 256);
    let mut p = Producer::new(ring.clone()).unwrap();
    let mut c = Consumer::new(ring.clone(), 1 << 20).unwrap();
    let big = pattern(2, 5000);
    let progress = p.write_fragments(40, &big, 0).unwrap();
    assert!(progress < big.len());
    assert!(drain(&mut c).is_empty());
    // The producer is abandoned here, as if its process died.
    let mut p = Producer::new(ring.clone()).unwrap();
    let small = pattern(3, 700);
    assert_eq!(stream_message(&mut p, &mut c, 42, &small), small);
    assert_eq!(c.discarded_messages(), 1);
}

// ------------------------------------------------------------------ corruption

extern "C" {
    fn mprotect(addr: *mut u8, len: usize, prot: i32) -> i32;
}

#[test]
fn should_report_errors_not_panic_on_random_corruption() {
    let seed = seed("should_report_errors_not_panic_on_random_corruption");
    let mut rng = Rng::new(seed);
    const PAGE: usize = 4096;
    const CAP: usize = 8192;
    let len = region_len(CAP);
    // Guard pages on both sides turn any access outside the ring into a crash.
    let guarded = Region::create(PAGE + len.next_multiple_of(PAGE) + PAGE).unwrap();
    let g = guarded.as_ptr();
    // SAFETY: both ranges are whole pages inside the mapping we own.
    unsafe {
        assert_eq!(mprotect(g, PAGE, 0), 0);
        assert_eq!(mprotect(g.add(PAGE + len.next_multiple_of(PAGE)), PAGE, 0), 0);
    }
    // SAFETY: base..base+len lies between the guard pages.
    let base = unsafe { g.add(PAGE + len.next_multiple_of(PAGE) - len) };
    let base = (base as usize & !7) as *mut u8;
    let mut errors = 0;
    for round in 0..2000u32 {
        // SAFETY: base..base+len is inside the writable part of the mapping.
        let ring = unsafe { Ring::init(base, len, CAP, 16 + rng.below(CAP / 2 - 24)) }.unwrap();
        let mut p = Producer::new(ring.clone()).unwrap();
        let mut c = Consumer::new(ring.clone(), 1 << 16).unwrap();
        for i in 0..rng.below(200) {
            let _ = p.try_write(16 + (i % 3) as u32, &pattern(i as u64, rng.below(300)));
            if rng.below(10) == 0 {
                let _ = p.write_fragments(17, &pattern(0, 1 + rng.below(20_000)), 0);
            }
        }
        p.publish();
        let _ = drain_fallible(&mut c, 5);
        // Corrupt: random bytes into the data area, positions or header.
        for _ in 0..1 + rng.below(8) {
            let at = match rng.below(4) {
                0 => HEAD_OFFSET + rng.below(8),
                1 => TAIL_OFFSET + rng.below(16),
                2 => rng.below(DATA_OFFSET),
                _ => DATA_OFFSET + rng.below(CAP),
            };
            let v = match rng.below(3) {
                0 => rng.next() as u8,
                1 => 0,
                _ => 0xFF,
            };
            // SAFETY: at < len, inside the ring's region.
            unsafe { base.add(at).write_volatile(v) };
        }
        if rng.below(4) == 0 {
            // A plausible but wrong head.
            let h = ring.head().wrapping_add(8 * rng.below(2 * CAP / 8) as u64);
            ring.u64_at(HEAD_OFFSET).store(h, std::sync::atomic::Ordering::Release);
        }
        // SAFETY: as above; the header may now be garbage, which attach must survive.
        let attached = unsafe { Ring::attach(base, len) };
        let ring = match attached {
            Ok(r) => r,
            Err(_) => {
                errors += 1;
                continue;
            }
        };
        for r in [&ring] {
            if let Ok(mut c) = Consumer::new(r.clone(), 1 << 16) {
                errors += drain_fallible(&mut c, 50).is_err() as usize;
            }
            if let Ok(mut p) = Producer::new(r.clone()) {
                for i in 0..50 {
                    let _ = p.try_write(16, &[i; 40]);
                    if let Ok(Some((off, span))) = p.claim(rng.below(300)) {
                        assert!(off >= DATA_OFFSET && off + span <= DATA_OFFSET + CAP);
                        let _ = p.commit(8 * rng.below(span / 8 + 1));
                    }
                    let _ = p.free_bytes();
                }
                p.publish();
            }
            if let Ok(mut c) = Consumer::new(r.clone(), 1 << 16) {
                errors += drain_fallible(&mut c, 50).is_err() as usize;
            }
        }
        if round.is_multiple_of(500) {
            eprintln!("round {round}: {errors} errors so far");
        }
    }
    assert!(errors > 0, "corruption was never noticed");
}

/// Like `drain` but stops at the first error or after `polls` polls; checks
/// every returned span lies inside the data area.
fn drain_fallible(c: &mut Consumer, polls: usize) -> Result<(), RingError> {
    let data_end = DATA_OFFSET + c.ring().capacity();
    for _ in 0..polls {
        match c.poll()? {
            Polled::Empty => return Ok(()),
            Polled::Message { data, .. } => assert!(data.len() <= 1 << 16),
            Polled::Records { offset, len } => {
                assert!(offset >= DATA_OFFSET && offset + len <= data_end);
                let mut n = 0;
                for r in c.ring().records(offset, len) {
                    let r = r?;
                    assert!(r.offset + r.len <= data_end);
                    c.ring().copy_out(r.offset, r.len)?;
                    n = r.offset + align8(r.len) - offset;
                }
                c.release(n)?;
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------- two-process stress

extern "C" {
    fn dup(fd: i32) -> i32;
    fn close(fd: i32) -> i32;
}

const STRESS_ENV: &str = "TSAGE_RING_STRESS";
const STRESS_MESSAGES: u64 = 10_000_000;
const STRESS_CAPACITY: usize = 1 << 20;
const STRESS_KIND: u32 = 16;

/// The stress payload: the sequence number and a check word derived from it.
fn stress_payload(seq: u64) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[..8].copy_from_slice(&seq.to_ne_bytes());
    b[8..].copy_from_slice(&((seq as u32) ^ 0xA5A5_A5A5).to_ne_bytes());
    b
}

#[test]
fn should_pass_ten_million_sequenced_messages_in_order_between_two_processes() {
    if let Ok(spec) = std::env::var(STRESS_ENV) {
        stress_producer(&spec);
        return;
    }
    let len = region_len(STRESS_CAPACITY);
    let region = Region::create(len).unwrap();
    // SAFETY: the region is fresh and outlives the ring (the child maps its own).
    let ring = unsafe { Ring::init(region.as_ptr(), len, STRESS_CAPACITY, 4096) }.unwrap();
    let mut c = Consumer::new(ring.clone(), 1 << 20).unwrap();
    // SAFETY: dup of an open descriptor we own; the copy lacks close-on-exec.
    let fd = unsafe { dup(region.raw_fd().unwrap()) };
    assert!(fd >= 0);
    let name = format!(
        "{}::should_pass_ten_million_sequenced_messages_in_order_between_two_processes",
        module_path!().split_once("::").map(|(_, m)| m).unwrap_or("")
    );
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(STRESS_ENV, format!("{fd}:{len}"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // SAFETY: fd is our duplicate; the child has its own copy now.
    unsafe { close(fd) };

    let start = Instant::now();
    let deadline = start + Duration::from_secs(60);
    let mut next = 0u64;
    let mut idle = 0u32;
    while next < STRESS_MESSAGES {
        match c.poll().unwrap() {
            Polled::Records { offset, len } => {
                idle = 0;
                for r in ring.records(offset, len) {
                    let r = r.unwrap();
                    assert_eq!((r.kind, r.len), (STRESS_KIND, 12), "record {next}");
                    let mut b = [0u8; 12];
                    ring.read(r.offset, &mut b).unwrap();
                    assert_eq!(b, stress_payload(next), "record {next}");
                    next += 1;
                }
                c.release(len).unwrap();
            }
            Polled::Empty => {
                idle += 1;
                if idle.is_multiple_of(64) {
                    std::thread::yield_now();
                }
                if idle.is_multiple_of(4096) {
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        let _ = child.wait();
                        panic!("timed out after 60 s at message {next}");
                    }
                    if let Some(status) = child.try_wait().unwrap() {
                        // Drain what it published before exiting, then judge.
                        if c.ring().head() == c.tail() {
                            panic!("producer exited ({status}) after {next} messages");
                        }
                    }
                }
                std::hint::spin_loop();
            }
            Polled::Message { .. } => panic!("unexpected fragmented message"),
        }
    }
    let elapsed = start.elapsed();
    let status = child.wait().unwrap();
    assert!(status.success(), "producer process failed: {status}");
    assert_eq!(c.poll().unwrap(), Polled::Empty, "nothing after the last message");
    eprintln!(
        "two-process stress: {STRESS_MESSAGES} messages in {:.2?} = {:.1} M messages/s",
        elapsed,
        STRESS_MESSAGES as f64 / elapsed.as_secs_f64() / 1e6
    );
}

/// The child side: maps the inherited region and writes the sequence.
fn stress_producer(spec: &str) {
    let (fd, len) = spec.split_once(':').expect("fd:len");
    let (fd, len): (i32, usize) = (fd.parse().unwrap(), len.parse().unwrap());
    // SAFETY: the parent passed a live memfd of len bytes; the ring protocol
    // orders every access to the shared bytes.
    let region = unsafe { Region::map(fd, len) }.unwrap();
    // SAFETY: region outlives the ring (both live to the end of this function).
    let ring = unsafe { Ring::attach(region.as_ptr(), region.len()) }.unwrap();
    let mut p = Producer::new(ring).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seq = 0u64;
    let mut spins = 0u32;
    while seq < STRESS_MESSAGES {
        let mut batch = 0;
        while batch < 256 && seq < STRESS_MESSAGES && p.try_write(STRESS_KIND, &stress_payload(seq)).unwrap() {
            seq += 1;
            batch += 1;
        }
        p.publish();
        if batch == 0 {
            spins += 1;
            if spins.is_multiple_of(64) {
                std::thread::yield_now();
                assert!(Instant::now() < deadline, "producer timed out at {seq}");
            }
            std::hint::spin_loop();
        }
    }
}

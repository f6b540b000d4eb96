//! Records: padding at the wrap, publishing, a full ring, claim and commit in place.

use super::*;

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

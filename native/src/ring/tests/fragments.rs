//! Fragmented messages: reassembly from 1 byte to 16 MiB, and inconsistent fragments.

use super::*;

// ------------------------------------------------------------------ fragments

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

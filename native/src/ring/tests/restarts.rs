//! Restarts: a producer or consumer that comes back continues where the other side expects.

use super::*;

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

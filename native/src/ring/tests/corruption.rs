//! Random corruption of the shared bytes: errors, never panics.

use super::*;

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

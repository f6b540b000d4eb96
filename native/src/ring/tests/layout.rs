//! Laying out and attaching: the header, its checks, bad geometry.

use super::*;

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

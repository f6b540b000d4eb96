//! Single-producer single-consumer rings of variable-length records in shared memory.
//!
//! The layout and the protocol are specified in `docs/ring.md`; this module is
//! the reference implementation. In short: a 512-byte header (magic, version,
//! geometry, then `head` and `tail` on their own 128-byte lines) is followed by
//! a power-of-two data area holding 8-byte-aligned records
//! (`u32 length`, `u32 kind`, payload). The producer publishes `head` with a
//! release store once per batch; the consumer reads records in place after an
//! acquire load of `head` and hands space back by publishing `tail`.
//!
//! Nothing here trusts the shared memory: every length, kind and position read
//! from it is checked against the geometry fixed at [`Ring::init`] /
//! [`Ring::attach`], and a violation is a [`RingError`], never a panic or an
//! access outside the mapping.

mod consumer;
mod producer;
#[cfg(test)]
mod tests;

pub use consumer::{Consumer, Polled};
pub use producer::Producer;

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Magic number at offset 0: the bytes `TSAGRING` read as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"TSAGRING");
/// Layout version stored at [`VERSION_OFFSET`]; written last when initialising.
pub const VERSION: u32 = 1;

/// Offset of the u64 magic number.
pub const MAGIC_OFFSET: usize = 0;
/// Offset of the u32 layout version (0 while the header is being written).
pub const VERSION_OFFSET: usize = 8;
/// Offset of a u32 copy of [`DATA_OFFSET`], so readers need not hard-code it.
pub const DATA_OFFSET_OFFSET: usize = 12;
/// Offset of the u64 capacity of the data area in bytes.
pub const CAPACITY_OFFSET: usize = 16;
/// Offset of the u64 largest payload one record may carry.
pub const MAX_RECORD_OFFSET: usize = 24;
/// Offset of the u32 process id of the process that initialised the ring.
pub const CREATOR_PID_OFFSET: usize = 32;
/// Offset of the u64 producer position (`head`), alone on the line 128..256.
pub const HEAD_OFFSET: usize = 128;
/// Offset of the u64 consumer position (`tail`), on the line 256..384.
pub const TAIL_OFFSET: usize = 256;
/// Offset of the u64 consumer fragment flag (non-zero while the consumer is
/// inside a fragmented message), next to `tail` on the same line.
pub const CONSUMER_FRAG_OFFSET: usize = 264;
/// Offset of the data area from the start of the region.
pub const DATA_OFFSET: usize = 512;

/// Size of a record header: `u32 length` (payload bytes) then `u32 kind`.
pub const RECORD_HEADER: usize = 8;
/// Records start at multiples of this many bytes from the data area.
pub const RECORD_ALIGN: usize = 8;
/// Size of the fragment header that starts a [`KIND_FRAG_FIRST`] payload:
/// `u32 total length` then `u32 user kind`.
pub const FRAG_HEADER: usize = 8;

/// Smallest data-area capacity.
pub const MIN_CAPACITY: usize = 4096;
/// Largest data-area capacity (keeps the region under `shm::MAX_REGION_LEN`).
pub const MAX_CAPACITY: usize = 1 << 39;
/// Smallest allowed `max_record` (room for a fragment header and some data).
pub const MIN_MAX_RECORD: usize = 16;
/// Largest allowed `max_record` (a record length must fit a u32 with room to spare).
pub const MAX_MAX_RECORD: usize = 1 << 30;

/// Record kind filling space the consumer skips (always at the wrap when written by [`Producer`]).
pub const KIND_PADDING: u32 = 0;
/// First fragment of a large message: payload = u32 total, u32 user kind, first chunk.
pub const KIND_FRAG_FIRST: u32 = 1;
/// A fragment that neither starts nor completes a message.
pub const KIND_FRAG_MIDDLE: u32 = 2;
/// The fragment that completes a message.
pub const KIND_FRAG_LAST: u32 = 3;
/// Kinds from here up belong to the user and pass through the ring untouched;
/// kinds 4..16 are reserved and rejected.
pub const KIND_USER_MIN: u32 = 16;

/// Bytes a region needs for a ring with a data area of `capacity` bytes.
pub fn region_len(capacity: usize) -> usize {
    DATA_OFFSET + capacity
}

/// Bytes a record with a `payload`-byte payload occupies in the data area
/// (header plus payload rounded up to [`RECORD_ALIGN`]).
pub const fn record_size(payload: usize) -> usize {
    RECORD_HEADER + align8(payload)
}

/// Rounds `n` up to a multiple of 8.
pub const fn align8(n: usize) -> usize {
    (n + (RECORD_ALIGN - 1)) & !(RECORD_ALIGN - 1)
}

/// What went wrong with a ring: its header, its contents, or a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RingError {
    /// The region is shorter than the header, or than the data area it announces.
    TooShort {
        /// Bytes mapped.
        len: usize,
        /// Bytes needed.
        needed: usize,
    },
    /// The base pointer is null or not 8-byte aligned.
    Misaligned,
    /// Magic and version are both zero: nobody has initialised the region (yet).
    NotInitialised,
    /// The first 8 bytes are not [`MAGIC`].
    BadMagic(u64),
    /// The version is not [`VERSION`].
    BadVersion(u32),
    /// The capacity is not a power of two in `MIN_CAPACITY..=MAX_CAPACITY`.
    BadCapacity(u64),
    /// The max record size is outside `MIN_MAX_RECORD..=min(capacity/2 - 8, MAX_MAX_RECORD)`.
    BadMaxRecord(u64),
    /// A record, claim, or message is larger than allowed.
    TooLarge {
        /// Size asked for or found.
        len: usize,
        /// Largest size allowed.
        max: usize,
    },
    /// The caller broke the API contract (bad kind, commit past the claim, ...).
    Invalid(String),
    /// Shared memory holds something the protocol forbids; says what and where.
    Corrupt(String),
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RingError::TooShort { len, needed } => {
                write!(f, "ring region is {len} bytes, needs {needed}")
            }
            RingError::Misaligned => write!(f, "ring region base is null or not 8-byte aligned"),
            RingError::NotInitialised => write!(f, "ring region is not initialised"),
            RingError::BadMagic(m) => write!(f, "ring region has bad magic {m:#018x}"),
            RingError::BadVersion(v) => {
                write!(f, "ring layout version {v} is not supported (want {VERSION})")
            }
            RingError::BadCapacity(c) => write!(
                f,
                "ring capacity {c} is not a power of two in {MIN_CAPACITY}..={MAX_CAPACITY}"
            ),
            RingError::BadMaxRecord(m) => write!(
                f,
                "ring max record {m} is outside {MIN_MAX_RECORD}..=min(capacity/2 - 8, {MAX_MAX_RECORD})"
            ),
            RingError::TooLarge { len, max } => {
                write!(f, "{len} bytes is larger than the {max} allowed")
            }
            RingError::Invalid(s) => write!(f, "invalid ring call: {s}"),
            RingError::Corrupt(s) => write!(f, "ring corrupt: {s}"),
        }
    }
}

impl std::error::Error for RingError {}

/// Checks capacity and max record size; both come from callers or from shared memory.
fn check_geometry(capacity: u64, max_record: u64) -> Result<(), RingError> {
    if !capacity.is_power_of_two() || capacity < MIN_CAPACITY as u64 || capacity > MAX_CAPACITY as u64 {
        return Err(RingError::BadCapacity(capacity));
    }
    let limit = (capacity / 2 - RECORD_HEADER as u64).min(MAX_MAX_RECORD as u64);
    if max_record < MIN_MAX_RECORD as u64 || max_record > limit {
        return Err(RingError::BadMaxRecord(max_record));
    }
    Ok(())
}

/// A view of a ring laid out in a shared mapping. It does not own the mapping;
/// clones are views of the same ring. Geometry (capacity, max record) is read
/// once, at [`Ring::init`] or [`Ring::attach`], and never re-read from shared
/// memory, so the other process cannot change the bounds this side checks against.
#[derive(Debug, Clone)]
pub struct Ring {
    base: *mut u8,
    len: usize,
    capacity: usize,
    max_record: usize,
}

// SAFETY: a Ring is a pointer into a shared mapping that this code accesses
// only through atomics and raw copies (never a reference), from whichever
// thread holds the Ring; the constructor's contract keeps the mapping alive for
// as long as any Ring exists.
unsafe impl Send for Ring {}

impl Ring {
    /// Lays out a new ring in `base..base+len` and returns a view of it. The
    /// header is written first and the version last (release store), so a
    /// concurrent [`Ring::attach`] sees either no ring or a complete one. The
    /// data area is not cleared; positions start at 0.
    ///
    /// # Safety
    /// `base..base+len` must be a readable and writable mapping that outlives
    /// the returned Ring and all its clones (and the Producer/Consumer made
    /// from them), and no Rust reference to any of its bytes may exist while
    /// they are used. No other process may write the region while this runs
    /// (one that attaches meanwhile gets [`RingError::NotInitialised`] or a
    /// complete ring).
    pub unsafe fn init(base: *mut u8, len: usize, capacity: usize, max_record: usize) -> Result<Ring, RingError> {
        check_base(base, len)?;
        check_geometry(capacity as u64, max_record as u64)?;
        if len < region_len(capacity) {
            return Err(RingError::TooShort {
                len,
                needed: region_len(capacity),
            });
        }
        let ring = Ring {
            base,
            len,
            capacity,
            max_record,
        };
        // Version 0 first, so an attach racing with us sees "not initialised".
        ring.u32_at(VERSION_OFFSET).store(0, Ordering::Release);
        for off in (0..DATA_OFFSET).step_by(8).filter(|&o| o != VERSION_OFFSET) {
            ring.u64_at(off).store(0, Ordering::Relaxed);
        }
        ring.u64_at(MAGIC_OFFSET).store(MAGIC, Ordering::Relaxed);
        ring.u32_at(DATA_OFFSET_OFFSET)
            .store(DATA_OFFSET as u32, Ordering::Relaxed);
        ring.u64_at(CAPACITY_OFFSET).store(capacity as u64, Ordering::Relaxed);
        ring.u64_at(MAX_RECORD_OFFSET)
            .store(max_record as u64, Ordering::Relaxed);
        ring.u32_at(CREATOR_PID_OFFSET)
            .store(std::process::id(), Ordering::Relaxed);
        ring.u64_at(HEAD_OFFSET).store(0, Ordering::Relaxed);
        ring.u64_at(TAIL_OFFSET).store(0, Ordering::Relaxed);
        ring.u64_at(CONSUMER_FRAG_OFFSET).store(0, Ordering::Relaxed);
        ring.u32_at(VERSION_OFFSET).store(VERSION, Ordering::Release);
        Ok(ring)
    }

    /// Returns a view of a ring another process (or [`Ring::init`]) laid out in
    /// `base..base+len`, after checking the version (acquire load), the magic,
    /// the data offset, the geometry, and that the region holds the whole data area.
    ///
    /// # Safety
    /// `base..base+len` must be a readable and writable mapping that outlives
    /// the returned Ring and all its clones, and no Rust reference to any of
    /// its bytes may exist while they are used (this module reaches it only
    /// through atomics and raw copies). Another process may change any byte of
    /// it at any time; this module copes with that.
    pub unsafe fn attach(base: *mut u8, len: usize) -> Result<Ring, RingError> {
        check_base(base, len)?;
        let probe = Ring {
            base,
            len,
            capacity: 0,
            max_record: 0,
        };
        let version = probe.u32_at(VERSION_OFFSET).load(Ordering::Acquire);
        let magic = probe.u64_at(MAGIC_OFFSET).load(Ordering::Relaxed);
        if magic != MAGIC {
            if magic == 0 && version == 0 {
                return Err(RingError::NotInitialised);
            }
            return Err(RingError::BadMagic(magic));
        }
        if version == 0 {
            return Err(RingError::NotInitialised);
        }
        if version != VERSION {
            return Err(RingError::BadVersion(version));
        }
        let data_offset = probe.u32_at(DATA_OFFSET_OFFSET).load(Ordering::Relaxed);
        if data_offset as usize != DATA_OFFSET {
            return Err(RingError::Corrupt(format!(
                "header data offset is {data_offset}, want {DATA_OFFSET}"
            )));
        }
        let capacity = probe.u64_at(CAPACITY_OFFSET).load(Ordering::Relaxed);
        let max_record = probe.u64_at(MAX_RECORD_OFFSET).load(Ordering::Relaxed);
        check_geometry(capacity, max_record)?;
        let (capacity, max_record) = (capacity as usize, max_record as usize);
        if len < region_len(capacity) {
            return Err(RingError::TooShort {
                len,
                needed: region_len(capacity),
            });
        }
        Ok(Ring {
            base,
            len,
            capacity,
            max_record,
        })
    }

    /// Start of the region (not of the data area).
    pub fn base(&self) -> *mut u8 {
        self.base
    }

    /// Length of the region as given to `init`/`attach`.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a ring region holds at least the header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Bytes in the data area (a power of two).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Largest payload a single record may carry.
    pub fn max_record(&self) -> usize {
        self.max_record
    }

    /// Largest span [`Producer::claim`] can ever grant (`capacity / 2`); larger
    /// claims could wait forever at the wrap.
    pub fn max_claim(&self) -> usize {
        self.capacity / 2
    }

    /// Process id stored by the process that initialised the ring.
    pub fn creator_pid(&self) -> u32 {
        self.u32_at(CREATOR_PID_OFFSET).load(Ordering::Relaxed)
    }

    /// The published producer position (acquire load), for diagnostics.
    pub fn head(&self) -> u64 {
        self.u64_at(HEAD_OFFSET).load(Ordering::Acquire)
    }

    /// The published consumer position (acquire load), for diagnostics.
    pub fn tail(&self) -> u64 {
        self.u64_at(TAIL_OFFSET).load(Ordering::Acquire)
    }

    /// Copies `dst.len()` bytes starting `offset` bytes from the region base
    /// into `dst`. The range must lie inside the data area.
    pub fn read(&self, offset: usize, dst: &mut [u8]) -> Result<(), RingError> {
        self.check_data_range(offset, dst.len())?;
        // SAFETY: the range is inside the data area (checked); dst is a Rust
        // slice, which never points into the region (see write_data), so the
        // two cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(self.base.add(offset), dst.as_mut_ptr(), dst.len()) };
        Ok(())
    }

    /// Reads a native-endian u64 `offset` bytes from the region base (inside the data area).
    pub fn read_u64(&self, offset: usize) -> Result<u64, RingError> {
        let mut b = [0u8; 8];
        self.read(offset, &mut b)?;
        Ok(u64::from_ne_bytes(b))
    }

    /// Copies `len` bytes at `offset` from the region base (inside the data area) into a new Vec.
    pub fn copy_out(&self, offset: usize, len: usize) -> Result<Vec<u8>, RingError> {
        self.check_data_range(offset, len)?;
        let mut v = vec![0u8; len];
        self.read(offset, &mut v)?;
        Ok(v)
    }

    /// The records in `len` bytes starting `offset` bytes from the region base,
    /// such as a run returned by [`Consumer::poll`]. Each item is checked
    /// against the span and the ring's geometry as it is read.
    pub fn records(&self, offset: usize, len: usize) -> Records<'_> {
        Records {
            ring: self,
            pos: offset,
            end: offset.saturating_add(len),
            failed: false,
        }
    }

    fn check_data_range(&self, offset: usize, len: usize) -> Result<(), RingError> {
        let end = offset.checked_add(len);
        match end {
            Some(end) if offset >= DATA_OFFSET && end <= DATA_OFFSET + self.capacity => Ok(()),
            _ => Err(RingError::Invalid(format!(
                "bytes {offset}..+{len} are outside the data area {DATA_OFFSET}..{}",
                DATA_OFFSET + self.capacity
            ))),
        }
    }

    /// The header word at `off` (a multiple of 8 below [`DATA_OFFSET`]).
    fn u64_at(&self, off: usize) -> &AtomicU64 {
        debug_assert!(off.is_multiple_of(8) && off + 8 <= DATA_OFFSET);
        // SAFETY: base is 8-aligned and the region holds at least DATA_OFFSET
        // bytes (checked by the constructors), so the word is in bounds and
        // aligned; the mapping outlives self by the constructors' contract.
        unsafe { AtomicU64::from_ptr(self.base.add(off).cast()) }
    }

    /// The header half-word at `off` (a multiple of 4 below [`DATA_OFFSET`]).
    fn u32_at(&self, off: usize) -> &AtomicU32 {
        debug_assert!(off.is_multiple_of(4) && off + 4 <= DATA_OFFSET);
        // SAFETY: as for u64_at, with 4-byte alignment.
        unsafe { AtomicU32::from_ptr(self.base.add(off).cast()) }
    }

    /// The u32 at data-area offset `off` (a multiple of 4, `off + 4 <= capacity`).
    fn data_u32(&self, off: usize) -> &AtomicU32 {
        assert!(
            off.is_multiple_of(4) && off + 4 <= self.capacity,
            "ring bug: data word {off} out of range"
        );
        // SAFETY: the word lies inside the data area (asserted) whose end is
        // within the region (checked by the constructors), 4-byte aligned
        // because base and DATA_OFFSET are 8-aligned.
        unsafe { AtomicU32::from_ptr(self.base.add(DATA_OFFSET + off).cast()) }
    }

    /// Reads the record header at data-area offset `off`: (payload length, kind).
    fn read_header(&self, off: usize) -> (u32, u32) {
        let len = self.data_u32(off).load(Ordering::Relaxed);
        let kind = self.data_u32(off + 4).load(Ordering::Relaxed);
        (len, kind)
    }

    /// Writes a record header at data-area offset `off`.
    fn write_header(&self, off: usize, len: u32, kind: u32) {
        self.data_u32(off).store(len, Ordering::Relaxed);
        self.data_u32(off + 4).store(kind, Ordering::Relaxed);
    }

    /// Copies `src` into the data area at `off`.
    fn write_data(&self, off: usize, src: &[u8]) {
        assert!(
            off <= self.capacity && src.len() <= self.capacity - off,
            "ring bug: write {off}..+{} out of range",
            src.len()
        );
        // SAFETY: the destination is inside the data area (asserted). src is a
        // Rust slice, which never points into the region: forming one would
        // break the region's contract (see Ring::attach), and the addon checks
        // that data JavaScript hands over lies outside the region. So the two
        // do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.base.add(DATA_OFFSET + off), src.len()) };
    }

    /// Data-area offset of position `pos`.
    fn offset_of(&self, pos: u64) -> usize {
        (pos & (self.capacity as u64 - 1)) as usize
    }
}

fn check_base(base: *mut u8, len: usize) -> Result<(), RingError> {
    if base.is_null() || !(base as usize).is_multiple_of(8) {
        return Err(RingError::Misaligned);
    }
    if len < DATA_OFFSET {
        return Err(RingError::TooShort {
            len,
            needed: DATA_OFFSET,
        });
    }
    Ok(())
}

/// One record found by [`Records`]: its kind and where its payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// The record kind.
    pub kind: u32,
    /// Offset of the payload from the region base.
    pub offset: usize,
    /// Payload length in bytes.
    pub len: usize,
}

/// Iterator over the records of a span; see [`Ring::records`]. After an
/// error it yields nothing more.
#[derive(Debug)]
pub struct Records<'a> {
    ring: &'a Ring,
    pos: usize,
    end: usize,
    failed: bool,
}

impl Iterator for Records<'_> {
    type Item = Result<Record, RingError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.end {
            return None;
        }
        let ring = self.ring;
        let data_end = DATA_OFFSET + ring.capacity;
        let ok_span = self.pos >= DATA_OFFSET
            && self.end <= data_end
            && (self.pos - DATA_OFFSET).is_multiple_of(RECORD_ALIGN)
            && self.end - self.pos >= RECORD_HEADER;
        if !ok_span {
            self.failed = true;
            return Some(Err(RingError::Invalid(format!(
                "span at {}..{} is not a run of records in the data area",
                self.pos, self.end
            ))));
        }
        let (len, kind) = ring.read_header(self.pos - DATA_OFFSET);
        let size = record_size(len as usize);
        if size > self.end - self.pos || (kind != KIND_PADDING && len as usize > ring.max_record) {
            self.failed = true;
            return Some(Err(RingError::Corrupt(format!(
                "record at region offset {} (length {len}, kind {kind}) overruns its span ending at {}",
                self.pos, self.end
            ))));
        }
        let rec = Record {
            kind,
            offset: self.pos + RECORD_HEADER,
            len: len as usize,
        };
        self.pos += size;
        Some(Ok(rec))
    }
}

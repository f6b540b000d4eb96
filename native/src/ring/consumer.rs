//! The reading side of a ring, with the reassembler for fragmented messages.

use std::sync::atomic::Ordering;

use super::{
    record_size, Ring, RingError, CONSUMER_FRAG_OFFSET, DATA_OFFSET, FRAG_HEADER, HEAD_OFFSET, KIND_FRAG_FIRST,
    KIND_FRAG_LAST, KIND_FRAG_MIDDLE, KIND_PADDING, KIND_USER_MIN, RECORD_ALIGN, RECORD_HEADER, TAIL_OFFSET,
};

/// What [`Consumer::poll`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Polled {
    /// A contiguous run of whole user records (kinds >= 16), in place: `len`
    /// bytes starting `offset` bytes from the region base. Read them (for
    /// instance with [`Ring::records`]), then [`Consumer::release`] them.
    Records {
        /// Offset of the first record header from the region base.
        offset: usize,
        /// Bytes in the run (a multiple of 8).
        len: usize,
    },
    /// A fragmented message, reassembled. Its records are already released.
    Message {
        /// The user kind carried by its FRAG_FIRST record.
        kind: u32,
        /// The message bytes.
        data: Vec<u8>,
    },
    /// Nothing to hand out now (fragments of an unfinished message may have been taken in).
    Empty,
}

#[derive(Debug)]
struct Pending {
    kind: u32,
    total: usize,
    data: Vec<u8>,
}

/// The single reader of a ring. Keeps its own `tail`, publishes it with a
/// release store on [`Consumer::release`] (and when `poll` skips padding or
/// takes in fragments).
#[derive(Debug)]
pub struct Consumer {
    ring: Ring,
    tail: u64,
    /// Last `head` loaded from shared memory (validated).
    head: u64,
    max_message: usize,
    /// Bytes of the run returned by the last poll not yet released.
    run: usize,
    pending: Option<Pending>,
    /// Skipping MIDDLE/LAST records of a message a previous consumer had begun.
    orphans: bool,
    /// Value last stored at CONSUMER_FRAG_OFFSET.
    frag_flag: bool,
    discarded: u64,
}

impl Consumer {
    /// Starts reading at the `tail` published in shared memory, so a restarted
    /// process continues after the last bytes the previous consumer released.
    /// If that consumer was inside a fragmented message (the shared fragment
    /// flag is set), the rest of that message is skipped: it is lost.
    /// Reassembled messages may be up to `max_message` bytes. At most one
    /// Consumer may read a ring at a time.
    pub fn new(ring: Ring, max_message: usize) -> Result<Consumer, RingError> {
        let tail = ring.u64_at(TAIL_OFFSET).load(Ordering::Acquire);
        let head = ring.u64_at(HEAD_OFFSET).load(Ordering::Acquire);
        let flag = ring.u64_at(CONSUMER_FRAG_OFFSET).load(Ordering::Acquire) != 0;
        if !head.is_multiple_of(RECORD_ALIGN as u64)
            || !tail.is_multiple_of(RECORD_ALIGN as u64)
            || head.wrapping_sub(tail) > ring.capacity as u64
        {
            return Err(RingError::Corrupt(format!(
                "published head {head} and tail {tail} are inconsistent with capacity {}",
                ring.capacity
            )));
        }
        Ok(Consumer {
            ring,
            tail,
            head,
            max_message,
            run: 0,
            pending: None,
            orphans: flag,
            frag_flag: flag,
            discarded: 0,
        })
    }

    /// The ring this consumer reads.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// Position after the last byte released.
    pub fn tail(&self) -> u64 {
        self.tail
    }

    /// Fragmented messages dropped unfinished because a new FRAG_FIRST
    /// arrived (a producer restarted in the middle of one).
    pub fn discarded_messages(&self) -> u64 {
        self.discarded
    }

    /// Loads head (acquire) and returns what is next after the released tail:
    /// padding is skipped and released; fragment records are copied into the
    /// reassembler and released, and a completed message is returned as
    /// [`Polled::Message`]; otherwise the run of whole user records up to
    /// head, the end of the data area, or the next non-user record is returned
    /// as [`Polled::Records`] (not released: polling again without releasing
    /// returns it again). Errors leave the offending record in place, so the
    /// same error comes back until the region is abandoned.
    pub fn poll(&mut self) -> Result<Polled, RingError> {
        self.run = 0;
        self.refresh_head()?;
        let start = self.tail;
        let result = self.scan();
        if self.tail != start {
            self.publish_tail();
        }
        result
    }

    /// Releases the first `bytes` bytes of the run returned by the last
    /// [`Consumer::poll`] (they must end on a record boundary) and publishes
    /// tail (release store). The rest of the run stays available.
    pub fn release(&mut self, bytes: usize) -> Result<(), RingError> {
        if bytes == 0 {
            return Ok(());
        }
        if !bytes.is_multiple_of(RECORD_ALIGN) || bytes > self.run {
            return Err(RingError::Invalid(format!(
                "release of {bytes} bytes: must be a multiple of 8 within the {} bytes polled",
                self.run
            )));
        }
        let off = self.ring.offset_of(self.tail);
        let mut p = 0;
        while p < bytes {
            let (len, _) = self.ring.read_header(off + p);
            let size = record_size(len as usize);
            if size > self.run - p {
                return Err(RingError::Corrupt(format!(
                    "record at region offset {} changed after poll",
                    DATA_OFFSET + off + p
                )));
            }
            p += size;
        }
        if p != bytes {
            return Err(RingError::Invalid(format!(
                "release of {bytes} bytes ends inside a record (next boundary at {p})"
            )));
        }
        self.tail = self.tail.wrapping_add(bytes as u64);
        self.run -= bytes;
        self.publish_tail();
        Ok(())
    }

    fn refresh_head(&mut self) -> Result<(), RingError> {
        let head = self.ring.u64_at(HEAD_OFFSET).load(Ordering::Acquire);
        let avail = head.wrapping_sub(self.tail);
        if !head.is_multiple_of(RECORD_ALIGN as u64)
            || avail > self.ring.capacity as u64
            || avail < self.head.wrapping_sub(self.tail)
        {
            return Err(RingError::Corrupt(format!(
                "head {head} is not between the previous head {} and tail {} + capacity {}",
                self.head, self.tail, self.ring.capacity
            )));
        }
        self.head = head;
        Ok(())
    }

    fn publish_tail(&mut self) {
        let flag = self.pending.is_some() || self.orphans;
        let word = self.ring.u64_at(CONSUMER_FRAG_OFFSET);
        // The flag must be set whenever the published tail is inside a
        // message: set it before moving tail into one, clear it after leaving.
        if flag && !self.frag_flag {
            word.store(1, Ordering::Release);
        }
        self.ring.u64_at(TAIL_OFFSET).store(self.tail, Ordering::Release);
        if !flag && self.frag_flag {
            word.store(0, Ordering::Release);
        }
        self.frag_flag = flag;
    }

    fn scan(&mut self) -> Result<Polled, RingError> {
        let cap = self.ring.capacity;
        loop {
            let avail = self.head.wrapping_sub(self.tail) as usize;
            if avail == 0 {
                return Ok(Polled::Empty);
            }
            let off = self.ring.offset_of(self.tail);
            let limit = avail.min(cap - off);
            let (len, kind) = self.ring.read_header(off);
            let size = record_size(len as usize);
            let at = DATA_OFFSET + off;
            if size > limit {
                return Err(RingError::Corrupt(format!(
                    "record at region offset {at} (length {len}, kind {kind}) runs past {}",
                    if limit == avail {
                        "head"
                    } else {
                        "the end of the data area"
                    }
                )));
            }
            if kind != KIND_PADDING && len as usize > self.ring.max_record {
                return Err(RingError::Corrupt(format!(
                    "record at region offset {at} has length {len} over the max {}",
                    self.ring.max_record
                )));
            }
            match kind {
                KIND_PADDING => self.tail = self.tail.wrapping_add(size as u64),
                KIND_FRAG_FIRST | KIND_FRAG_MIDDLE | KIND_FRAG_LAST => {
                    let done = self.take_fragment(off, len as usize, kind)?;
                    self.tail = self.tail.wrapping_add(size as u64);
                    if let Some(msg) = done {
                        return Ok(msg);
                    }
                }
                k if k >= KIND_USER_MIN => {
                    let mut p = size;
                    while p < limit {
                        let (len, kind) = self.ring.read_header(off + p);
                        let size = record_size(len as usize);
                        if kind < KIND_USER_MIN || size > limit - p || len as usize > self.ring.max_record {
                            break; // the next poll starts there and reports what is wrong
                        }
                        p += size;
                    }
                    self.run = p;
                    return Ok(Polled::Records { offset: at, len: p });
                }
                _ => {
                    return Err(RingError::Corrupt(format!(
                        "record at region offset {at} has reserved kind {kind}"
                    )))
                }
            }
        }
    }

    /// Takes the fragment record at data offset `off` with payload length
    /// `len` into the reassembler. Checks everything before changing any state.
    fn take_fragment(&mut self, off: usize, len: usize, kind: u32) -> Result<Option<Polled>, RingError> {
        let at = DATA_OFFSET + off;
        let payload = off + RECORD_HEADER;
        if kind == KIND_FRAG_FIRST {
            if len < FRAG_HEADER {
                return Err(RingError::Corrupt(format!(
                    "FRAG_FIRST at region offset {at} has a {len}-byte payload, shorter than its header"
                )));
            }
            let total = self.ring.data_u32(payload).load(Ordering::Relaxed) as usize;
            let user = self.ring.data_u32(payload + 4).load(Ordering::Relaxed);
            if user < KIND_USER_MIN {
                return Err(RingError::Corrupt(format!(
                    "FRAG_FIRST at region offset {at} carries non-user kind {user}"
                )));
            }
            if total > self.max_message {
                return Err(RingError::TooLarge {
                    len: total,
                    max: self.max_message,
                });
            }
            let chunk = len - FRAG_HEADER;
            if chunk > total {
                return Err(RingError::Corrupt(format!(
                    "FRAG_FIRST at region offset {at} carries {chunk} bytes of a {total}-byte message"
                )));
            }
            if self.pending.is_some() {
                self.discarded += 1;
            }
            self.orphans = false;
            let mut data = Vec::with_capacity(total);
            self.append(&mut data, payload + FRAG_HEADER, chunk);
            if chunk == total {
                self.pending = None;
                return Ok(Some(Polled::Message { kind: user, data }));
            }
            self.pending = Some(Pending {
                kind: user,
                total,
                data,
            });
            return Ok(None);
        }
        let Some(p) = self.pending.as_ref() else {
            if self.orphans {
                self.orphans = kind != KIND_FRAG_LAST;
                return Ok(None);
            }
            return Err(RingError::Corrupt(format!(
                "fragment kind {kind} at region offset {at} without a FRAG_FIRST"
            )));
        };
        let have = p.data.len();
        let completes = have + len == p.total;
        if have + len > p.total || completes != (kind == KIND_FRAG_LAST) {
            return Err(RingError::Corrupt(format!(
                "fragment kind {kind} at region offset {at} brings a {}-byte message to {} bytes",
                p.total,
                have + len
            )));
        }
        let mut p = self.pending.take().expect("checked above");
        self.append(&mut p.data, payload, len);
        if completes {
            return Ok(Some(Polled::Message {
                kind: p.kind,
                data: p.data,
            }));
        }
        self.pending = Some(p);
        Ok(None)
    }

    /// Appends `len` bytes at data offset `off` to `dst` (which has room:
    /// callers checked against the message total it was sized for).
    fn append(&self, dst: &mut Vec<u8>, off: usize, len: usize) {
        assert!(
            off <= self.ring.capacity && len <= self.ring.capacity - off,
            "ring bug: fragment {off}..+{len} out of range"
        );
        dst.reserve(len);
        let spare = dst.spare_capacity_mut();
        // SAFETY: the source is inside the data area (asserted above); the
        // destination is `len` bytes of dst's private spare capacity (reserved).
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.ring.base.add(DATA_OFFSET + off),
                spare.as_mut_ptr().cast::<u8>(),
                len,
            );
        }
        // SAFETY: the `len` bytes after the old length were just initialised.
        unsafe { dst.set_len(dst.len() + len) };
    }
}

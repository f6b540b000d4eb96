//! The writing side of a ring.

use std::sync::atomic::Ordering;

use super::{
    align8, record_size, Ring, RingError, DATA_OFFSET, FRAG_HEADER, HEAD_OFFSET, KIND_FRAG_FIRST, KIND_FRAG_LAST,
    KIND_FRAG_MIDDLE, KIND_PADDING, KIND_USER_MIN, RECORD_ALIGN, RECORD_HEADER, TAIL_OFFSET,
};

/// Smallest chunk [`Producer::write_fragments`] waits for room for (unless
/// less remains), so a nearly full ring is not filled with tiny fragments.
const FRAG_MIN_CHUNK: usize = 256;

/// The single writer of a ring. Keeps its own `head` (records written,
/// published or not) and publishes it to shared memory with a release store
/// once per batch ([`Producer::commit`], [`Producer::publish`]).
#[derive(Debug)]
pub struct Producer {
    ring: Ring,
    /// Position after the last record written (published or not).
    head: u64,
    /// Position last stored to shared `head`.
    published: u64,
    /// Last `tail` loaded from shared memory (validated).
    tail: u64,
    /// Bytes of the span granted by the last `claim` still uncommitted.
    claimed: usize,
}

impl Producer {
    /// Starts writing at the `head` published in shared memory, so a restarted
    /// process continues after the last batch the previous producer published
    /// (its unpublished records are lost). Fails if the published positions
    /// are inconsistent. At most one Producer may write a ring at a time.
    pub fn new(ring: Ring) -> Result<Producer, RingError> {
        let head = ring.u64_at(HEAD_OFFSET).load(Ordering::Acquire);
        let tail = ring.u64_at(TAIL_OFFSET).load(Ordering::Acquire);
        let used = head.wrapping_sub(tail);
        if !head.is_multiple_of(RECORD_ALIGN as u64)
            || !tail.is_multiple_of(RECORD_ALIGN as u64)
            || used > ring.capacity as u64
        {
            return Err(RingError::Corrupt(format!(
                "published head {head} and tail {tail} are inconsistent with capacity {}",
                ring.capacity
            )));
        }
        Ok(Producer {
            ring,
            head,
            published: head,
            tail,
            claimed: 0,
        })
    }

    /// The ring this producer writes.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// Position after the last record written, published or not.
    pub fn head(&self) -> u64 {
        self.head
    }

    /// Position last published to shared memory.
    pub fn published_head(&self) -> u64 {
        self.published
    }

    /// Grants a contiguous free span at the current head of at least `min`
    /// bytes (record headers included; rounded up to a multiple of 8, at least
    /// 8). If fewer than `min` bytes remain before the end of the data area, a
    /// padding record fills them first (it is published with the next commit).
    /// Returns `(offset from the region base, length)`: the length is all the
    /// contiguous free space there, at least `min`. `Ok(None)` when the ring is
    /// too full now; `Err(TooLarge)` when `min > ring.max_claim()` (it never
    /// will fit); `Err(Corrupt)` when the shared `tail` is impossible.
    ///
    /// The caller writes whole records from the start of the span and then
    /// calls [`Producer::commit`]. A later `claim` or `try_write` replaces the span.
    pub fn claim(&mut self, min: usize) -> Result<Option<(usize, usize)>, RingError> {
        self.claimed = 0;
        let max = self.ring.max_claim();
        if min > max {
            return Err(RingError::TooLarge { len: min, max });
        }
        let need = align8(min.max(RECORD_HEADER));
        let cap = self.ring.capacity;
        let off = self.ring.offset_of(self.head);
        let to_end = cap - off;
        let pad = if need <= to_end { 0 } else { to_end };
        let free = self.free_with(pad + need)?;
        if free < pad + need {
            return Ok(None);
        }
        let (start, span) = if pad == 0 {
            (off, free.min(to_end))
        } else {
            self.ring.write_header(off, (pad - RECORD_HEADER) as u32, KIND_PADDING);
            self.head = self.head.wrapping_add(pad as u64);
            (0, free - pad)
        };
        self.claimed = span;
        Ok(Some((DATA_OFFSET + start, span)))
    }

    /// Accepts `used` bytes of whole records written from the start of the
    /// span granted by the last [`Producer::claim`] (`used` is a multiple of 8,
    /// at most the span), then publishes head (release store), including any
    /// records written since the last publish. The records are checked first:
    /// each must have a kind of 0..=3 or >= 16, a length of at most
    /// `max_record`, and end inside `used`. What remains of the span can be
    /// committed by a further call.
    pub fn commit(&mut self, used: usize) -> Result<(), RingError> {
        self.advance(used)?;
        self.publish();
        Ok(())
    }

    /// [`Producer::commit`] without the publish: the records count as written
    /// (a later claim will not hand their space out again) but the consumer
    /// does not see them until [`Producer::publish`] or a later commit.
    pub fn advance(&mut self, used: usize) -> Result<(), RingError> {
        if !used.is_multiple_of(RECORD_ALIGN) || used > self.claimed {
            return Err(RingError::Invalid(format!(
                "commit of {used} bytes: must be a multiple of 8 within the {} bytes claimed",
                self.claimed
            )));
        }
        let off = self.ring.offset_of(self.head);
        let mut p = 0;
        while p < used {
            let (len, kind) = self.ring.read_header(off + p);
            let at = DATA_OFFSET + off + p;
            if (4..KIND_USER_MIN).contains(&kind) {
                return Err(RingError::Invalid(format!(
                    "record at region offset {at} has reserved kind {kind}"
                )));
            }
            if kind != KIND_PADDING && len as usize > self.ring.max_record {
                return Err(RingError::TooLarge {
                    len: len as usize,
                    max: self.ring.max_record,
                });
            }
            let size = record_size(len as usize);
            if size > used - p {
                return Err(RingError::Invalid(format!(
                    "record at region offset {at} ({size} bytes) runs past the {used} bytes committed"
                )));
            }
            p += size;
        }
        self.head = self.head.wrapping_add(used as u64);
        self.claimed -= used;
        Ok(())
    }

    /// Copies one record of user kind `kind` (>= 16) into the ring without
    /// publishing it (call [`Producer::publish`] after a batch). `Ok(false)`
    /// when the ring is too full now; `Err(TooLarge)` when the payload exceeds
    /// `max_record` (use [`Producer::write_fragments`]). Drops any claimed span.
    pub fn try_write(&mut self, kind: u32, payload: &[u8]) -> Result<bool, RingError> {
        if kind < KIND_USER_MIN {
            return Err(RingError::Invalid(format!(
                "kind {kind} is not a user kind (>= {KIND_USER_MIN})"
            )));
        }
        let max = self.ring.max_record;
        if payload.len() > max {
            return Err(RingError::TooLarge {
                len: payload.len(),
                max,
            });
        }
        let size = record_size(payload.len());
        let Some((start, _)) = self.claim(size)? else {
            return Ok(false);
        };
        self.put_record(start - DATA_OFFSET, kind, &[], payload);
        Ok(true)
    }

    /// Publishes head (release store) if records were written since the last publish.
    pub fn publish(&mut self) {
        if self.head != self.published {
            self.ring.u64_at(HEAD_OFFSET).store(self.head, Ordering::Release);
            self.published = self.head;
        }
    }

    /// Writes `data` as a fragmented message of user kind `user_kind`: one
    /// FRAG_FIRST record, then FRAG_MIDDLE records, then FRAG_LAST (a message
    /// that fits the FIRST record is that record alone). Writes as many
    /// fragments as fit now, starting `progress` bytes into `data`, publishes,
    /// and returns the new progress. Call again with it once the consumer has
    /// freed space, until it returns `data.len()`. Other records may be written
    /// between calls; no other fragmented message may be started until this
    /// one is done. `data` must be 1..=u32::MAX bytes.
    pub fn write_fragments(&mut self, user_kind: u32, data: &[u8], progress: usize) -> Result<usize, RingError> {
        if user_kind < KIND_USER_MIN {
            return Err(RingError::Invalid(format!(
                "kind {user_kind} is not a user kind (>= {KIND_USER_MIN})"
            )));
        }
        if data.is_empty() || data.len() > u32::MAX as usize {
            return Err(RingError::Invalid(format!(
                "a fragmented message must be 1..={} bytes, got {}",
                u32::MAX,
                data.len()
            )));
        }
        if progress > data.len() {
            return Err(RingError::Invalid(format!(
                "progress {progress} is past the {}-byte message",
                data.len()
            )));
        }
        let max = self.ring.max_record;
        let mut p = progress;
        while p < data.len() {
            let first = p == 0;
            let extra = if first { FRAG_HEADER } else { 0 };
            let remaining = data.len() - p;
            let want = remaining.min(FRAG_MIN_CHUNK).min(max - extra);
            let Some((start, span)) = self.claim(record_size(extra + want))? else {
                break;
            };
            let room = (span - RECORD_HEADER).min(max) - extra;
            let chunk = remaining.min(room);
            let kind = if first {
                KIND_FRAG_FIRST
            } else if chunk == remaining {
                KIND_FRAG_LAST
            } else {
                KIND_FRAG_MIDDLE
            };
            let mut fh = [0u8; FRAG_HEADER];
            fh[..4].copy_from_slice(&(data.len() as u32).to_ne_bytes());
            fh[4..].copy_from_slice(&user_kind.to_ne_bytes());
            self.put_record(start - DATA_OFFSET, kind, &fh[..extra], &data[p..p + chunk]);
            p += chunk;
        }
        self.publish();
        Ok(p)
    }

    /// Free bytes in the ring now (capacity minus unreleased bytes), from a
    /// fresh acquire load of tail; 0 if tail is impossible.
    pub fn free_bytes(&self) -> usize {
        let tail = self.ring.u64_at(TAIL_OFFSET).load(Ordering::Acquire);
        match self.check_tail(tail) {
            Ok(()) => self.ring.capacity - self.head.wrapping_sub(tail) as usize,
            Err(_) => 0,
        }
    }

    /// Writes a record of `kind` at data offset `off` with payload
    /// `prefix ++ body` (space already claimed) and advances head past it.
    fn put_record(&mut self, off: usize, kind: u32, prefix: &[u8], body: &[u8]) {
        let len = prefix.len() + body.len();
        self.ring.write_data(off + RECORD_HEADER, prefix);
        self.ring.write_data(off + RECORD_HEADER + prefix.len(), body);
        self.ring.write_header(off, len as u32, kind);
        self.head = self.head.wrapping_add(record_size(len) as u64);
        self.claimed = 0;
    }

    /// Free bytes, reloading tail from shared memory if the cached value
    /// leaves fewer than `want`.
    fn free_with(&mut self, want: usize) -> Result<usize, RingError> {
        let cap = self.ring.capacity;
        let free = cap - self.head.wrapping_sub(self.tail) as usize;
        if free >= want {
            return Ok(free);
        }
        let tail = self.ring.u64_at(TAIL_OFFSET).load(Ordering::Acquire);
        self.check_tail(tail)?;
        self.tail = tail;
        Ok(cap - self.head.wrapping_sub(tail) as usize)
    }

    /// A tail is possible if aligned and between the last tail seen and the published head.
    fn check_tail(&self, tail: u64) -> Result<(), RingError> {
        let ahead = tail.wrapping_sub(self.tail);
        if !tail.is_multiple_of(RECORD_ALIGN as u64) || ahead > self.published.wrapping_sub(self.tail) {
            return Err(RingError::Corrupt(format!(
                "tail {tail} is not between the previous tail {} and the published head {}",
                self.tail, self.published
            )));
        }
        Ok(())
    }
}

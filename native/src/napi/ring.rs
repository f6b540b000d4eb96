//! Exports for shared-memory rings ([`crate::ring`]) and group-process plumbing.
//!
//! JavaScript writes and reads records in place in the mapped region; these
//! calls only move the positions (claim/commit, poll/release) and handle
//! fragmented messages, once per batch. Results that are more than one number
//! go into a caller-registered `Float64Array` (`out`), so no call allocates.
//!
//! A handle keeps raw pointers into two JavaScript buffers between calls (the
//! region and `out`). References keep the buffers alive, and the pointers are
//! used only after checking the memory is still there (a transferred
//! `ArrayBuffer` keeps its object but loses its memory): `out` right before a
//! result is written to it, the region at the start of every call unless it
//! is one of the addon's own shared-memory mappings, which JavaScript cannot
//! detach (see `shm.rs`).

use super::buf::Mem;
use super::handles::{Handles, MAX_HANDLE};
use super::sys::*;
use super::{arg, Env, JsError, Result};
use crate::ring::{Consumer, Polled, Producer, Ring, RingError};

enum Side {
    Producer(Producer),
    Consumer(Consumer),
}

struct Slot {
    side: Side,
    /// Keeps the region's ArrayBuffer and the `out` array alive while the handle is open.
    refs: [napi_ref; 2],
    region: Mem<u8>,
    /// Whether the region could be detached (it is not one of the addon's mappings).
    detachable: bool,
    out: Mem<f64>,
}

impl Slot {
    /// Fails when the region could have been detached and no longer has the memory this handle
    /// points into. (The referenced values were checked to be an ArrayBuffer and a Float64Array at
    /// open, and a value's type never changes: only its memory can go, so only where it is now is
    /// asked.)
    fn check_region(&self, env: &Env) -> Result<()> {
        if self.detachable && env.arraybuffer_memory(env.deref(self.refs[0])?)? != self.region.byte_range() {
            return Err(JsError::arg(
                "the ring's region was detached or replaced; close the handle",
            ));
        }
        Ok(())
    }

    /// Writes `out[i] = v` for each pair, after checking `out` still has its memory. Only the
    /// calls that have a result to give pay for the check.
    fn write_out(&self, env: &Env, vals: &[(usize, f64)]) -> Result<()> {
        let (out, len) = env.typedarray_memory(env.deref(self.refs[1])?)?;
        if out != self.out.as_ptr() as usize || len < OUT_LEN {
            return Err(JsError::arg("the ring's out array was detached; close the handle"));
        }
        for &(i, v) in vals {
            assert!(i < OUT_LEN, "ring glue bug: out[{i}]");
            // SAFETY: out holds at least OUT_LEN f64s (checked at open and just now: it is still
            // attached, at the same address), kept alive by refs[1]; it lies outside the region.
            unsafe { self.out.as_ptr().add(i).write(v) };
        }
        Ok(())
    }
}

/// Elements of `out` a handle writes.
const OUT_LEN: usize = 4;

thread_local! {
    static SLOTS: Handles<Slot> = const { Handles::new() };
}

fn ring_err(e: RingError) -> JsError {
    JsError::new("ERR_TSAGE_RING", e.to_string())
}

/// Runs `f` on an open handle whose buffers are still attached.
fn with_slot<T>(env: &Env, h: napi_value, f: impl FnOnce(&mut Slot) -> Result<T>) -> Result<T> {
    let h = env.get_uint(h, "ring handle", MAX_HANDLE)?;
    SLOTS.with(|s| {
        s.with(h, "ring", |slot| {
            slot.check_region(env)?;
            f(slot)
        })
    })
}

/// `ringFill(h) -> bytes`: bytes published and not yet released, `head - tail`, for either side of
/// the ring. Clamped to the capacity: the other process writes one of the two and may write nonsense.
pub fn fill(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let used = with_slot(env, arg(args, 0, "h")?, |slot| {
        let ring = match &slot.side {
            Side::Producer(p) => p.ring(),
            Side::Consumer(c) => c.ring(),
        };
        Ok(ring.head().saturating_sub(ring.tail()).min(ring.capacity() as u64))
    })?;
    env.double(used as f64)
}

/// `ringRegionLen(capacity) -> number`: bytes a region needs for a ring of this capacity.
pub fn region_len(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let cap = env.get_uint(arg(args, 0, "capacity")?, "capacity", (1u64 << 39) as f64)? as usize;
    env.double(crate::ring::region_len(cap) as f64)
}

/// `ringInit(region, capacity, maxRecord)`: lays out a fresh ring in a region (version written last).
pub fn init(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let region = env.array_buffer(arg(args, 0, "region")?, "region")?;
    let cap = env.get_uint(arg(args, 1, "capacity")?, "capacity", (1u64 << 39) as f64)? as usize;
    let max_record = env.get_uint(arg(args, 2, "maxRecord")?, "maxRecord", (1u64 << 30) as f64)? as usize;
    // SAFETY: the region is the ArrayBuffer's memory, alive for this call; the
    // ring is only laid out here, and the Ring value is dropped before returning.
    unsafe { Ring::init(region.as_ptr(), region.len(), cap, max_record) }.map_err(ring_err)?;
    env.undefined()
}

/// `ringOpen(region, role, out, maxMessage) -> handle`: role 0 = producer, 1 = consumer.
pub fn open(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let buf = arg(args, 0, "region")?;
    let region = env.array_buffer(buf, "region")?;
    let role = env.get_uint(arg(args, 1, "role")?, "role", 1.0)?;
    let out_v = arg(args, 2, "out")?;
    let out = env.float64_array(out_v, "out", OUT_LEN)?;
    if out.overlaps(&region) {
        return Err(JsError::arg("out must not lie inside the region"));
    }
    let max_message = env.get_uint(arg(args, 3, "maxMessage")?, "maxMessage", u32::MAX as f64)? as usize;
    // SAFETY: the region ArrayBuffer is kept alive by the reference taken below
    // until ringClose, and every later call checks it is still attached before
    // the ring touches it. The ring reads and writes it only through atomics
    // and raw copies (never a Rust reference), and expects the other process
    // (and JavaScript) to write any of it at any time.
    let ring = unsafe { Ring::attach(region.as_ptr(), region.len()) }.map_err(ring_err)?;
    let side = if role == 0 {
        Side::Producer(Producer::new(ring).map_err(ring_err)?)
    } else {
        Side::Consumer(Consumer::new(ring, max_message).map_err(ring_err)?)
    };
    let first = env.reference(buf)?;
    let second = match env.reference(out_v) {
        Ok(r) => r,
        Err(e) => {
            // The first reference must not outlive a handle that was never made.
            env.unref(first);
            return Err(e);
        }
    };
    let slot = Slot {
        side,
        refs: [first, second],
        region,
        detachable: !super::shm::is_mapping(region.byte_range()),
        out,
    };
    let h = match SLOTS.with(|s| s.insert(slot)) {
        Ok(h) => h,
        Err(e) => {
            env.unref(first);
            env.unref(second);
            return Err(e);
        }
    };
    env.double(h as f64)
}

fn producer(slot: &mut Slot) -> Result<&mut Producer> {
    match &mut slot.side {
        Side::Producer(p) => Ok(p),
        Side::Consumer(_) => Err(JsError::arg("ring handle is a consumer, not a producer")),
    }
}

fn consumer(slot: &mut Slot) -> Result<&mut Consumer> {
    match &mut slot.side {
        Side::Consumer(c) => Ok(c),
        Side::Producer(_) => Err(JsError::arg("ring handle is a producer, not a consumer")),
    }
}

/// `ringCommitClaim(h, used, min, publish) -> boolean`: commits `used` bytes
/// of the current span (publishing head unless `publish` is false), then (when
/// `min > 0`) claims a span of at least `min` bytes: out[0] = offset, out[1] =
/// length. False when the ring is too full.
pub fn commit_claim(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let used = env.get_uint(arg(args, 1, "used")?, "used", u32::MAX as f64)? as usize;
    let min = env.get_uint(arg(args, 2, "min")?, "min", u32::MAX as f64)? as usize;
    let publish = env.get_uint(arg(args, 3, "publish")?, "publish", 1.0)? == 1;
    let ok = with_slot(env, arg(args, 0, "h")?, |slot| {
        let p = producer(slot)?;
        if publish {
            p.commit(used).map_err(ring_err)?;
        } else {
            p.advance(used).map_err(ring_err)?;
        }
        if min == 0 {
            return Ok(true);
        }
        match p.claim(min).map_err(ring_err)? {
            Some((off, len)) => {
                slot.write_out(env, &[(0, off as f64), (1, len as f64)])?;
                Ok(true)
            }
            None => Ok(false),
        }
    })?;
    env.boolean(ok)
}

/// `ringWriteFragments(h, kind, data, progress) -> progress`: writes as much of
/// a large message as fits now, as fragment records, and publishes.
pub fn write_fragments(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let kind = env.get_uint(arg(args, 1, "kind")?, "kind", u32::MAX as f64)? as u32;
    let data = env.uint8_array(arg(args, 2, "data")?, "data")?;
    let progress = env.get_uint(arg(args, 3, "progress")?, "progress", u32::MAX as f64)? as usize;
    let p = with_slot(env, arg(args, 0, "h")?, |slot| {
        if data.overlaps(&slot.region) {
            return Err(JsError::arg("data must not lie inside the ring's region"));
        }
        // SAFETY: data is the typed array's memory, alive for this call; it lies outside the
        // region (checked), the only memory the producer writes, so it is not written meanwhile.
        let bytes = unsafe { data.as_slice() };
        producer(slot)?.write_fragments(kind, bytes, progress).map_err(ring_err)
    })?;
    env.double(p as f64)
}

/// `ringReleasePoll(h, released) -> 0 | 1 | ArrayBuffer`: releases `released`
/// bytes of the last run, then polls: 0 = nothing; 1 = a run of records in
/// place at out[0] (offset) with out[1] bytes; an ArrayBuffer = a reassembled
/// fragmented message whose kind is out[2].
pub fn release_poll(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let released = env.get_uint(arg(args, 1, "released")?, "released", u32::MAX as f64)? as usize;
    let polled = with_slot(env, arg(args, 0, "h")?, |slot| {
        let c = consumer(slot)?;
        c.release(released).map_err(ring_err)?;
        let polled = c.poll().map_err(ring_err)?;
        if let Polled::Records { offset, len } = polled {
            slot.write_out(env, &[(0, offset as f64), (1, len as f64)])?;
        } else if let Polled::Message { kind, .. } = polled {
            slot.write_out(env, &[(2, kind as f64)])?;
        }
        Ok(polled)
    })?;
    match polled {
        Polled::Empty => env.double(0.0),
        Polled::Records { .. } => env.double(1.0),
        Polled::Message { data, .. } => {
            let mut data = data.into_boxed_slice();
            let (p, n) = (data.as_mut_ptr(), data.len());
            if n == 0 {
                return env.arraybuffer_copy(&[]);
            }
            env.external_arraybuffer(p, n, Box::new(data))
        }
    }
}

/// `ringSync(producer, used, consumer, released)`: commits and publishes a
/// producer's `used` bytes, then releases a consumer's `released` bytes, back
/// to back, so a group's replies and its acknowledgement of what it read
/// become visible together. A handle of -1 skips that side.
pub fn sync(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let ph = env.get_f64(arg(args, 0, "producer")?, "producer")?;
    let used = env.get_uint(arg(args, 1, "used")?, "used", u32::MAX as f64)? as usize;
    let ch = env.get_f64(arg(args, 2, "consumer")?, "consumer")?;
    let released = env.get_uint(arg(args, 3, "released")?, "released", u32::MAX as f64)? as usize;
    if ph >= 0.0 {
        with_slot(env, args[0], |slot| producer(slot)?.commit(used).map_err(ring_err))?;
    }
    if ch >= 0.0 {
        with_slot(env, args[2], |slot| consumer(slot)?.release(released).map_err(ring_err))?;
    }
    env.undefined()
}

/// `ringClose(h)`: forgets a handle and lets its region be collected. Safe to call
/// again, or from a finalizer after an explicit close: a closed handle is ignored.
pub fn close(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let h = env.get_uint(arg(args, 0, "h")?, "ring handle", MAX_HANDLE)?;
    // A handle that is not open (closed already) is left alone: closing is idempotent.
    if let Some(slot) = SLOTS.with(|s| s.take(h)) {
        for r in slot.refs {
            env.unref(r);
        }
    }
    env.undefined()
}

/// `setParentDeathSignal(signal)`: this process gets `signal` when its parent dies.
pub fn parent_death_signal(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let sig = env.get_uint(arg(args, 0, "signal")?, "signal", 64.0)? as i32;
    crate::process::set_parent_death_signal(sig).map_err(|e| JsError::io("prctl(PR_SET_PDEATHSIG)", e))?;
    env.double(crate::process::parent_pid() as f64)
}

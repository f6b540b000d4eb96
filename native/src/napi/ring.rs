//! Exports for shared-memory rings ([`crate::ring`]) and group-process plumbing.
//!
//! JavaScript writes and reads records in place in the mapped region; these
//! calls only move the positions (claim/commit, poll/release) and handle
//! fragmented messages, once per batch. Results that are more than one number
//! go into a caller-registered `Float64Array` (`out`), so no call allocates.

use std::ptr;

use super::handles::Handles;
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
    out: *mut f64,
}

thread_local! {
    static SLOTS: Handles<Slot> = const { Handles::new() };
}

fn ring_err(e: RingError) -> JsError {
    JsError::new("ERR_TSAGE_RING", e.to_string())
}

fn with_slot<T>(env: &Env, h: napi_value, f: impl FnOnce(&mut Slot) -> Result<T>) -> Result<T> {
    let h = env.get_uint(h, "ring handle", u32::MAX as f64)? as usize;
    SLOTS.with(|s| s.with(h, "ring", f))
}

fn region(env: &Env, v: napi_value) -> Result<(*mut u8, usize)> {
    env.get_bytes(v, "region")
}

/// `ringRegionLen(capacity) -> number`: bytes a region needs for a ring of this capacity.
pub fn region_len(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let cap = env.get_uint(arg(args, 0, "capacity")?, "capacity", (1u64 << 39) as f64)? as usize;
    env.double(crate::ring::region_len(cap) as f64)
}

/// `ringInit(region, capacity, maxRecord)`: lays out a fresh ring in a region (version written last).
pub fn init(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let (base, len) = region(env, arg(args, 0, "region")?)?;
    let cap = env.get_uint(arg(args, 1, "capacity")?, "capacity", (1u64 << 39) as f64)? as usize;
    let max_record = env.get_uint(arg(args, 2, "maxRecord")?, "maxRecord", (1u64 << 30) as f64)? as usize;
    // SAFETY: base..base+len is the ArrayBuffer's memory, alive for this call; the
    // ring is only laid out here, and the Ring value is dropped before returning.
    unsafe { Ring::init(base, len, cap, max_record) }.map_err(ring_err)?;
    env.undefined()
}

/// `ringOpen(region, role, out, maxMessage) -> handle`: role 0 = producer, 1 = consumer.
pub fn open(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let buf = arg(args, 0, "region")?;
    let (base, len) = region(env, buf)?;
    let role = env.get_uint(arg(args, 1, "role")?, "role", 1.0)?;
    let out_v = arg(args, 2, "out")?;
    let (out, out_len) = env.get_bytes(out_v, "out")?;
    if out_len < 4 * 8 || !(out as usize).is_multiple_of(8) {
        return Err(JsError::arg("out must be a Float64Array of at least 4 elements"));
    }
    let max_message = env.get_uint(arg(args, 3, "maxMessage")?, "maxMessage", u32::MAX as f64)? as usize;
    // SAFETY: the region ArrayBuffer is kept alive by the reference taken below
    // until ringClose; JavaScript touches the shared bytes only in claimed or
    // polled spans, as the ring protocol requires.
    let ring = unsafe { Ring::attach(base, len) }.map_err(ring_err)?;
    let side = if role == 0 {
        Side::Producer(Producer::new(ring).map_err(ring_err)?)
    } else {
        Side::Consumer(Consumer::new(ring, max_message).map_err(ring_err)?)
    };
    let mut refs = [ptr::null_mut(); 2];
    for (i, v) in [buf, out_v].into_iter().enumerate() {
        // SAFETY: live env and handle; refs[i] is a valid out pointer.
        let st = unsafe { napi_create_reference(env.0, v, 1, &mut refs[i]) };
        if st != NAPI_OK {
            return Err(JsError::new("ERR_TSAGE_NAPI", "napi_create_reference failed"));
        }
    }
    let slot = Slot {
        side,
        refs,
        out: out as *mut f64,
    };
    let h = SLOTS.with(|s| s.insert(slot));
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

fn set_out(slot: &Slot, i: usize, v: f64) {
    // SAFETY: out points to at least 4 f64s (checked at open), kept alive by refs[1].
    unsafe { slot.out.add(i).write(v) };
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
                set_out(slot, 0, off as f64);
                set_out(slot, 1, len as f64);
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
    let (data, len) = env.get_bytes(arg(args, 2, "data")?, "data")?;
    let progress = env.get_uint(arg(args, 3, "progress")?, "progress", u32::MAX as f64)? as usize;
    let p = with_slot(env, arg(args, 0, "h")?, |slot| {
        // SAFETY: data..data+len is the typed array's memory, alive for this call and not shared.
        let bytes = unsafe { std::slice::from_raw_parts(data as *const u8, len) };
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
            set_out(slot, 0, offset as f64);
            set_out(slot, 1, len as f64);
        } else if let Polled::Message { kind, .. } = polled {
            set_out(slot, 2, kind as f64);
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

/// `ringClose(h)`: forgets a handle and lets its region be collected.
pub fn close(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let h = env.get_uint(arg(args, 0, "h")?, "ring handle", u32::MAX as f64)? as usize;
    let slot = SLOTS.with(|s| s.take(h));
    if let Some(slot) = slot {
        for r in slot.refs {
            // SAFETY: r was created by napi_create_reference in this env and is deleted once.
            unsafe { napi_delete_reference(env.0, r) };
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

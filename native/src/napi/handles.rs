//! Small integer handles for native objects JavaScript holds (rings, sockets).
//!
//! A handle names a slot and the generation of the object in it, so a handle
//! whose object was closed never reaches the next object stored in that slot:
//! closing twice, or closing from a finalizer after an explicit close, is a
//! no-op rather than closing someone else's socket.

use std::cell::RefCell;

use super::{JsError, Result};

/// Slots per table (the low bits of a handle).
const SLOT_BITS: u32 = 24;
/// Generations wrap here, which keeps every handle below 2^53 (exact as a JavaScript number).
const GENERATIONS: u64 = 1 << 29;

/// The largest handle number, for argument checks.
pub const MAX_HANDLE: f64 = ((GENERATIONS << SLOT_BITS) - 1) as f64;

struct Entry<T> {
    generation: u64,
    value: Option<T>,
}

/// A table of objects addressed by handle; freed slots are reused under a new generation.
pub struct Handles<T>(RefCell<Vec<Entry<T>>>);

fn split(h: u64) -> (usize, u64) {
    ((h & ((1 << SLOT_BITS) - 1)) as usize, h >> SLOT_BITS)
}

impl<T> Handles<T> {
    /// An empty table (usable in a `thread_local!` const initialiser).
    pub const fn new() -> Self {
        Handles(RefCell::new(Vec::new()))
    }

    /// Stores `v` and returns its handle.
    pub fn insert(&self, v: T) -> Result<u64> {
        let mut s = self.0.borrow_mut();
        let i = match s.iter().position(|e| e.value.is_none()) {
            Some(i) => i,
            None if s.len() < 1 << SLOT_BITS => {
                s.push(Entry {
                    generation: 0,
                    value: None,
                });
                s.len() - 1
            }
            None => return Err(JsError::new("ERR_TSAGE_NATIVE_LIMIT", "too many open native handles")),
        };
        s[i].value = Some(v);
        Ok(s[i].generation << SLOT_BITS | i as u64)
    }

    /// Runs `f` on the object behind handle `h`; `what` names the kind in the error.
    pub fn with<R>(&self, h: u64, what: &str, f: impl FnOnce(&mut T) -> Result<R>) -> Result<R> {
        let (i, generation) = split(h);
        let mut s = self.0.borrow_mut();
        let v = s
            .get_mut(i)
            .filter(|e| e.generation == generation)
            .and_then(|e| e.value.as_mut())
            .ok_or_else(|| JsError::arg(format!("{what} handle {h} is not open")))?;
        f(v)
    }

    /// Removes and returns the object behind handle `h`; `None` (and nothing changes) when the
    /// handle is not open, including when it was closed already.
    pub fn take(&self, h: u64) -> Option<T> {
        let (i, generation) = split(h);
        let mut s = self.0.borrow_mut();
        let e = s.get_mut(i).filter(|e| e.generation == generation)?;
        let v = e.value.take()?;
        e.generation = (e.generation + 1) % GENERATIONS;
        Some(v)
    }
}

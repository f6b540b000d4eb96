//! Small integer handles for native objects JavaScript holds (rings, sockets).

use std::cell::RefCell;

use super::{JsError, Result};

/// A table of objects addressed by index; freed slots are reused.
pub struct Handles<T>(RefCell<Vec<Option<T>>>);

impl<T> Handles<T> {
    /// An empty table (usable in a `thread_local!` const initialiser).
    pub const fn new() -> Self {
        Handles(RefCell::new(Vec::new()))
    }

    /// Stores `v` and returns its handle.
    pub fn insert(&self, v: T) -> usize {
        let mut s = self.0.borrow_mut();
        if let Some(i) = s.iter().position(|x| x.is_none()) {
            s[i] = Some(v);
            i
        } else {
            s.push(Some(v));
            s.len() - 1
        }
    }

    /// Runs `f` on the object behind handle `h`; `what` names the kind in the error.
    pub fn with<R>(&self, h: usize, what: &str, f: impl FnOnce(&mut T) -> Result<R>) -> Result<R> {
        let mut s = self.0.borrow_mut();
        let v = s
            .get_mut(h)
            .and_then(|x| x.as_mut())
            .ok_or_else(|| JsError::arg(format!("{what} handle {h} is not open")))?;
        f(v)
    }

    /// Removes and returns the object behind handle `h`, if any.
    pub fn take(&self, h: usize) -> Option<T> {
        self.0.borrow_mut().get_mut(h).and_then(|x| x.take())
    }
}

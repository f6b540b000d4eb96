//! Where a state machine puts what it produced during one call: datagrams to
//! send and events, whose bytes live in one arena so that, once warm, a call
//! allocates nothing. The caller reads them, then [`Outbox::clear`]s it.

use std::net::SocketAddr;

/// Bytes in the outbox's arena (an event's user data or payload).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    start: u32,
    len: u32,
}

impl Span {
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Datagrams and events of type `E`.
#[derive(Debug)]
pub struct Outbox<E> {
    arena: Vec<u8>,
    datagrams: Vec<(SocketAddr, Span)>,
    events: Vec<E>,
}

impl<E> Default for Outbox<E> {
    fn default() -> Self {
        Outbox {
            arena: Vec::new(),
            datagrams: Vec::new(),
            events: Vec::new(),
        }
    }
}

impl<E> Outbox<E> {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets everything, keeping the memory.
    pub fn clear(&mut self) {
        self.arena.clear();
        self.datagrams.clear();
        self.events.clear();
    }

    /// The datagrams, in the order they should be sent.
    pub fn datagrams(&self) -> impl ExactSizeIterator<Item = (SocketAddr, &[u8])> + '_ {
        self.datagrams.iter().map(|(to, s)| (*to, self.bytes(*s)))
    }

    /// The events, oldest first.
    pub fn events(&self) -> &[E] {
        &self.events
    }

    /// The bytes of a span from one of this outbox's events.
    pub fn bytes(&self, span: Span) -> &[u8] {
        &self.arena[span.start as usize..(span.start + span.len) as usize]
    }

    /// Copies `b` into the arena.
    pub(crate) fn push_bytes(&mut self, b: &[u8]) -> Span {
        let start = self.arena.len();
        self.arena.extend_from_slice(b);
        Span {
            start: start as u32,
            len: b.len() as u32,
        }
    }

    /// Appends `n` zero bytes to the arena for the caller to fill in place (see
    /// [`Outbox::tail_mut`]); returns where they start.
    pub(crate) fn grow(&mut self, n: usize) -> usize {
        let start = self.arena.len();
        self.arena.resize(start + n, 0);
        start
    }

    /// The arena's bytes from `start` (what [`Outbox::grow`] returned) on.
    pub(crate) fn tail_mut(&mut self, start: usize) -> &mut [u8] {
        &mut self.arena[start..]
    }

    /// Keeps the first `len` of the bytes grown at `start` as a span, and forgets the rest.
    pub(crate) fn keep(&mut self, start: usize, len: usize) -> Span {
        self.arena.truncate(start + len);
        Span {
            start: start as u32,
            len: self.arena.len().saturating_sub(start) as u32,
        }
    }

    /// Forgets the bytes grown at `start`.
    pub(crate) fn shrink(&mut self, start: usize) {
        self.arena.truncate(start);
    }

    /// Appends a datagram for `to` that `write` produces into a buffer of
    /// `max` zeroed bytes, returning how many it used (none on error, and then
    /// nothing is queued).
    pub(crate) fn push_datagram<T>(
        &mut self,
        to: SocketAddr,
        max: usize,
        write: impl FnOnce(&mut [u8]) -> Result<usize, T>,
    ) -> Result<(), T> {
        let start = self.arena.len();
        self.arena.resize(start + max, 0);
        match write(&mut self.arena[start..]) {
            Ok(n) => {
                self.arena.truncate(start + n.min(max));
                let span = Span {
                    start: start as u32,
                    len: n.min(max) as u32,
                };
                self.datagrams.push((to, span));
                Ok(())
            }
            Err(e) => {
                self.arena.truncate(start);
                Err(e)
            }
        }
    }

    pub(crate) fn push_event(&mut self, e: E) {
        self.events.push(e);
    }
}

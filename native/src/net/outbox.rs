//! The outbox: the datagrams an endpoint has to send, the pool their buffers
//! come from and return to, and the endpoint's counters. Peers and the link
//! write into it; the driver (or a test) empties it.
//!
//! A peer queues *payloads* ([`Outbox::send_payload`]): buffers that start with
//! the link's headroom, with no address yet. Before the endpoint lets go of the
//! peer it [`Outbox::seal`]s them: the link frames each in place and the peer's
//! address goes on. Nothing unsealed ever leaves.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};

use super::Stats;

/// Most buffers kept for reuse.
const MAX_POOLED: usize = 4096;
/// Capacity of a fresh buffer for a whole-message datagram (the raw link), when the MTU is larger:
/// such a buffer is not pooled, so a large MTU costs an allocation per datagram, not a pool of them.
const FRESH_DATAGRAM: usize = 2048;
/// Stateless replies are skipped while this many datagrams wait to be sent.
const MAX_PENDING_REPLIES: usize = 65_536;

#[derive(Debug)]
pub(crate) struct Outbox {
    queue: VecDeque<(SocketAddr, Vec<u8>)>,
    pool: Vec<Vec<u8>>,
    mtu: usize,
    /// Bytes the link puts before a peer payload.
    headroom: usize,
    /// Largest datagram before the link adds its trailer: what a peer may fill.
    limit: usize,
    /// Payloads at the back of `queue` not yet sealed.
    unsealed: usize,
    /// The endpoint's counters.
    pub(crate) stats: Stats,
}

/// Where an unsealed payload is addressed until it is sealed.
const NOWHERE: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

impl Outbox {
    /// An outbox for datagrams of at most `mtu` bytes, of which the link takes
    /// `headroom` before each peer payload and `tailroom` after it.
    pub(crate) fn new(mtu: usize, headroom: usize, tailroom: usize) -> Self {
        Outbox {
            queue: VecDeque::new(),
            pool: Vec::new(),
            mtu,
            headroom,
            limit: mtu - tailroom,
            unsealed: 0,
            stats: Stats::default(),
        }
    }

    /// Bytes the link puts before a peer payload (the payload starts here in a buffer).
    #[inline]
    pub(crate) fn headroom(&self) -> usize {
        self.headroom
    }

    /// Largest length a peer may fill a buffer to (headroom included).
    #[inline]
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes a peer payload may have.
    #[inline]
    pub(crate) fn payload_room(&self) -> usize {
        self.limit - self.headroom
    }

    /// A cleared buffer from the pool, with room for a datagram.
    pub(crate) fn buf(&mut self) -> Vec<u8> {
        // Twice the MTU: a packet's record of reliable commands in canonical form (4-byte ids)
        // is a little longer than the packet itself, and must not regrow on every packet.
        let want = 2 * self.mtu;
        let mut b = self.pool.pop().unwrap_or_else(|| Vec::with_capacity(want));
        b.clear();
        if b.capacity() < want {
            b.reserve(want);
        }
        b
    }

    /// A cleared buffer for a datagram of `len` bytes (a whole message of the raw link): a pooled one
    /// when it is big enough, else a fresh one of at least `len` (kept by [`Outbox::recycle`] only
    /// if it reaches the MTU).
    pub(crate) fn datagram(&mut self, len: usize) -> Vec<u8> {
        if let Some(mut b) = self.pool.pop() {
            if b.capacity() >= len {
                b.clear();
                return b;
            }
            self.pool.push(b);
        }
        Vec::with_capacity(len.max(self.mtu.min(FRESH_DATAGRAM)))
    }

    /// A buffer for a peer payload: [`Outbox::headroom`] zero bytes for the link, then the payload.
    pub(crate) fn payload_buf(&mut self) -> Vec<u8> {
        let mut b = self.buf();
        b.resize(self.headroom, 0);
        b
    }

    /// A cleared pooled buffer for a small stateless reply, or `None` when so many datagrams
    /// wait that replying would only grow the queue (a flood of handshakes gets no answers then).
    /// It allocates nothing when the pool is empty until written to.
    pub(crate) fn reply_buf(&mut self) -> Option<Vec<u8>> {
        if self.queue.len() >= MAX_PENDING_REPLIES {
            return None;
        }
        let mut b = self.pool.pop().unwrap_or_default();
        b.clear();
        Some(b)
    }

    /// Queues a finished datagram (the link's own packets).
    pub(crate) fn send(&mut self, addr: SocketAddr, dg: Vec<u8>) {
        debug_assert_eq!(
            self.unsealed, 0,
            "a link packet between a peer's payloads and their sealing"
        );
        self.stats.datagrams_out += 1;
        self.stats.bytes_out += dg.len() as u64;
        self.queue.push_back((addr, dg));
    }

    /// Queues a peer payload (after [`Outbox::headroom`] bytes of `dg`), to be sealed.
    #[inline]
    pub(crate) fn send_payload(&mut self, dg: Vec<u8>) {
        self.unsealed += 1;
        self.queue.push_back((NOWHERE, dg));
    }

    /// Whether payloads wait to be sealed.
    #[inline]
    pub(crate) fn has_unsealed(&self) -> bool {
        self.unsealed != 0
    }

    /// Seals the payloads queued since the last seal: `frame` turns each into its datagram in
    /// place, and they go to `addr`. A payload `frame` refuses (returns false for: say, it could
    /// not be encrypted) is dropped and counted, never sent as it is; the peer's reliability
    /// treats it as lost.
    pub(crate) fn seal(&mut self, addr: SocketAddr, mut frame: impl FnMut(&mut Vec<u8>) -> bool) {
        let from = self.queue.len() - self.unsealed;
        let mut refused = 0;
        for (a, dg) in self.queue.range_mut(from..) {
            if !frame(dg) {
                dg.clear();
                refused += 1;
                continue;
            }
            *a = addr;
            self.stats.datagrams_out += 1;
            self.stats.bytes_out += dg.len() as u64;
        }
        self.unsealed = 0;
        if refused != 0 {
            // Every datagram queued has at least one byte: the cleared ones are exactly those refused.
            self.queue.retain(|(_, dg)| !dg.is_empty());
            self.stats.drop_unsealable += refused;
        }
    }

    /// Datagrams waiting.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// The next datagram to send.
    pub(crate) fn pop(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        debug_assert_eq!(self.unsealed, 0, "payloads left unsealed");
        self.queue.pop_front()
    }

    /// Returns a buffer to the pool (bounded). Buffers without room for a packet (such as
    /// the empty `Vec` a record's bytes were taken out of) are not worth keeping: one
    /// would push out a useful buffer and cost an allocation when popped.
    pub(crate) fn recycle(&mut self, b: Vec<u8>) {
        if self.pool.len() < MAX_POOLED && b.capacity() >= self.mtu && b.capacity() <= 1 << 16 {
            self.pool.push(b);
        }
    }
}

//! A seeded link conditioner: loss, duplication, reordering, delay and jitter
//! applied to outgoing datagrams. Deterministic for a given seed and input.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::net::SocketAddr;

use super::rng::Rng;

/// What the conditioner does to each datagram. Probabilities are in `[0, 1]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConditionerConfig {
    /// Probability a datagram is dropped.
    pub loss: f64,
    /// Probability a datagram is sent twice (each copy delayed independently).
    pub duplicate: f64,
    /// Probability a datagram is held back an extra `delay_ms / 2 + jitter_ms + 2` ms,
    /// so that later datagrams overtake it.
    pub reorder: f64,
    /// Base one-way delay.
    pub delay_ms: u64,
    /// Extra uniform random delay in `0..=jitter_ms`.
    pub jitter_ms: u64,
    /// PRNG seed.
    pub seed: u64,
    /// Most datagrams held at once; beyond it new ones are dropped.
    pub max_queued: usize,
}

impl Default for ConditionerConfig {
    fn default() -> Self {
        ConditionerConfig {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            delay_ms: 0,
            jitter_ms: 0,
            seed: 1,
            max_queued: 1 << 20,
        }
    }
}

/// Counters of what the conditioner did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConditionerStats {
    /// Datagrams offered.
    pub offered: u64,
    /// Dropped on purpose.
    pub lost: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Held back to be reordered.
    pub reordered: u64,
    /// Dropped because `max_queued` was reached.
    pub overflowed: u64,
}

#[derive(Debug)]
struct Item {
    at: u64,
    order: u64,
    addr: SocketAddr,
    data: Vec<u8>,
}

impl PartialEq for Item {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.order) == (o.at, o.order)
    }
}
impl Eq for Item {}
impl PartialOrd for Item {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Item {
    /// Reversed so that `BinaryHeap` pops the earliest release time first.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.order).cmp(&(self.at, self.order))
    }
}

/// Holds outgoing datagrams until their (randomised) release time.
#[derive(Debug)]
pub struct Conditioner {
    cfg: ConditionerConfig,
    rng: Rng,
    heap: BinaryHeap<Item>,
    order: u64,
    stats: ConditionerStats,
}

impl Conditioner {
    /// A conditioner with the given behaviour.
    pub fn new(cfg: ConditionerConfig) -> Self {
        Conditioner {
            rng: Rng::new(cfg.seed),
            cfg,
            heap: BinaryHeap::new(),
            order: 0,
            stats: ConditionerStats::default(),
        }
    }

    /// Current behaviour.
    pub fn config(&self) -> &ConditionerConfig {
        &self.cfg
    }

    /// Changes behaviour (held datagrams keep their release times; the PRNG is reseeded).
    pub fn set_config(&mut self, cfg: ConditionerConfig) {
        self.rng = Rng::new(cfg.seed);
        self.cfg = cfg;
    }

    /// Counters.
    pub fn stats(&self) -> &ConditionerStats {
        &self.stats
    }

    /// Datagrams held.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Release time of the earliest held datagram.
    pub fn next_due(&self) -> Option<u64> {
        self.heap.peek().map(|i| i.at)
    }

    /// Offers a datagram sent at `now`.
    pub fn push(&mut self, now: u64, addr: SocketAddr, data: &[u8]) {
        self.stats.offered += 1;
        if self.rng.next_f64() < self.cfg.loss {
            self.stats.lost += 1;
            return;
        }
        let copies = if self.rng.next_f64() < self.cfg.duplicate {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            if self.heap.len() >= self.cfg.max_queued {
                self.stats.overflowed += 1;
                return;
            }
            let mut at = now + self.cfg.delay_ms + self.rng.below_incl(self.cfg.jitter_ms);
            if self.rng.next_f64() < self.cfg.reorder {
                self.stats.reordered += 1;
                at += self.cfg.delay_ms / 2 + self.cfg.jitter_ms + 2;
            }
            self.order += 1;
            self.heap.push(Item {
                at,
                order: self.order,
                addr,
                data: data.to_vec(),
            });
        }
    }

    /// Next datagram due at `now`, if any.
    pub fn pop_due(&mut self, now: u64) -> Option<(SocketAddr, Vec<u8>)> {
        if self.heap.peek()?.at > now {
            return None;
        }
        self.heap.pop().map(|i| (i.addr, i.data))
    }

    /// Passes every datagram due at `now` to `f`.
    pub fn drain_due(&mut self, now: u64, mut f: impl FnMut(SocketAddr, &[u8])) {
        while let Some((a, d)) = self.pop_due(now) {
            f(a, &d);
        }
    }
}

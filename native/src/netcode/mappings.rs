//! The server's two bounded tables, as the reference implementation keeps
//! them: encryption mappings (address -> packet keys) for clients between
//! their connection request and their disconnection, and the history of
//! connect tokens already used (token MAC -> address).

use std::collections::HashMap;
use std::net::SocketAddr;

use super::seconds_ms;
use crate::crypto::{Key, TAG_BYTES};

/// The keys of one address.
#[derive(Debug)]
pub(crate) struct Mapping {
    pub addr: SocketAddr,
    /// Server to client.
    pub send_key: Key,
    /// Client to server.
    pub recv_key: Key,
    /// The token's timeout; a mapping unused for this long expires (if > 0).
    pub timeout_seconds: i32,
    /// A pending client's deadline to connect (none once connected).
    pub expire_at: Option<u64>,
    pub last_access: u64,
    /// The slot of a connected client.
    pub slot: Option<u32>,
    /// The MAC of the connect token that made this mapping.
    pub token_mac: [u8; TAG_BYTES],
}

impl Mapping {
    fn expired(&self, now: u64) -> bool {
        (self.timeout_seconds > 0 && self.last_access + seconds_ms(self.timeout_seconds) < now)
            || self.expire_at.is_some_and(|t| t < now)
    }
}

/// At most `capacity` mappings, found by address.
#[derive(Debug)]
pub(crate) struct Mappings {
    entries: Vec<Option<Mapping>>,
    capacity: usize,
    by_addr: HashMap<SocketAddr, usize>,
}

impl Mappings {
    pub(crate) fn new(capacity: usize) -> Self {
        Mappings {
            entries: Vec::new(),
            capacity,
            by_addr: HashMap::new(),
        }
    }

    /// Adds or refreshes the mapping of `m.addr`; `None` when every entry is
    /// live (the request is then ignored).
    pub(crate) fn add(&mut self, m: Mapping, now: u64) -> Option<usize> {
        if let Some(&i) = self.by_addr.get(&m.addr) {
            let old = self.entries[i].as_mut().expect("indexed entries exist");
            if old.slot.is_some() {
                return None;
            }
            *old = m;
            return Some(i);
        }
        let i = if self.entries.len() < self.capacity {
            self.entries.push(None);
            self.entries.len() - 1
        } else {
            self.entries
                .iter()
                .position(|e| e.as_ref().is_none_or(|e| e.slot.is_none() && e.expired(now)))?
        };
        if let Some(old) = self.entries[i].take() {
            self.by_addr.remove(&old.addr);
        }
        self.by_addr.insert(m.addr, i);
        self.entries[i] = Some(m);
        Some(i)
    }

    /// The live mapping of `addr`, marked as used now.
    pub(crate) fn find(&mut self, addr: SocketAddr, now: u64) -> Option<usize> {
        let i = *self.by_addr.get(&addr)?;
        let m = self.entries[i].as_mut().expect("indexed entries exist");
        if m.expired(now) {
            return None;
        }
        m.last_access = now;
        Some(i)
    }

    pub(crate) fn get(&self, i: usize) -> &Mapping {
        self.entries[i].as_ref().expect("a held mapping index is live")
    }

    pub(crate) fn get_mut(&mut self, i: usize) -> &mut Mapping {
        self.entries[i].as_mut().expect("a held mapping index is live")
    }

    /// Forgets mapping `i` (its keys are wiped as they drop).
    pub(crate) fn remove(&mut self, i: usize) {
        if let Some(m) = self.entries[i].take() {
            self.by_addr.remove(&m.addr);
        }
    }

    /// Mappings held, live or expired.
    pub(crate) fn len(&self) -> usize {
        self.by_addr.len()
    }
}

#[derive(Debug)]
struct TokenEntry {
    time: u64,
    mac: [u8; TAG_BYTES],
    addr: SocketAddr,
    /// The next server-to-client sequence for this token's keys, so that a
    /// client reconnecting with the same token never sees a nonce reused.
    next_sequence: u64,
}

/// The last `capacity` connect tokens seen, by the MAC of their private part.
#[derive(Debug)]
pub(crate) struct TokenHistory {
    entries: Vec<TokenEntry>,
    capacity: usize,
}

impl TokenHistory {
    pub(crate) fn new(capacity: usize) -> Self {
        TokenHistory {
            entries: Vec::new(),
            capacity,
        }
    }

    /// True if the token with `mac` is new (it is then recorded, replacing
    /// the oldest entry when full) or was seen from this same `addr`; false
    /// if it was used from another address.
    pub(crate) fn find_or_add(&mut self, addr: SocketAddr, mac: &[u8; TAG_BYTES], now: u64) -> bool {
        let mut oldest: Option<usize> = None;
        for (i, e) in self.entries.iter().enumerate() {
            if &e.mac == mac {
                return e.addr == addr;
            }
            if oldest.is_none_or(|o| e.time < self.entries[o].time) {
                oldest = Some(i);
            }
        }
        let entry = TokenEntry {
            time: now,
            mac: *mac,
            addr,
            next_sequence: 0,
        };
        match oldest {
            Some(o) if self.entries.len() >= self.capacity => self.entries[o] = entry,
            _ => self.entries.push(entry),
        }
        true
    }

    /// Where sequences under this token's keys continue from (0 if forgotten).
    pub(crate) fn next_sequence(&self, mac: &[u8; TAG_BYTES]) -> u64 {
        self.entries
            .iter()
            .find(|e| &e.mac == mac)
            .map_or(0, |e| e.next_sequence)
    }

    /// Records where sequences under this token's keys stopped.
    pub(crate) fn set_next_sequence(&mut self, mac: &[u8; TAG_BYTES], sequence: u64) {
        if let Some(e) = self.entries.iter_mut().find(|e| &e.mac == mac) {
            e.next_sequence = e.next_sequence.max(sequence);
        }
    }
}

//! The peer table: one entry per peer (connecting or connected), addressed by
//! a small id that is reused once the peer is gone, and found by address.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use super::link::Session;
use super::peer::Peer;
use super::PeerId;

/// Everything an endpoint keeps for one peer.
#[derive(Debug)]
pub(crate) struct Entry {
    pub id: PeerId,
    pub addr: SocketAddr,
    /// Unique for the endpoint's lifetime, unlike the id: tells a peer from a later one that reuses its id.
    pub serial: u64,
    /// When the peer was last heard from.
    pub last_recv: u64,
    /// The link's state for it (handshake, connection ids).
    pub session: Session,
    /// Its reliability state.
    pub peer: Peer,
}

/// The table.
#[derive(Debug, Default)]
pub(crate) struct Table {
    slots: Vec<Option<Box<Entry>>>,
    free: Vec<PeerId>,
    by_addr: HashMap<SocketAddr, PeerId>,
    /// Peers per IP address (entries removed at zero, so it never outgrows the table).
    by_ip: HashMap<IpAddr, usize>,
    count: usize,
    serials: u64,
}

impl Table {
    /// Adds a peer at `addr` and returns its id.
    pub(crate) fn add(&mut self, addr: SocketAddr, session: Session, now: u64) -> PeerId {
        let id = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            (self.slots.len() - 1) as PeerId
        });
        self.serials += 1;
        self.slots[id as usize] = Some(Box::new(Entry {
            id,
            addr,
            serial: self.serials,
            last_recv: now,
            session,
            peer: Peer::new(id, now),
        }));
        self.by_addr.insert(addr, id);
        *self.by_ip.entry(addr.ip()).or_insert(0) += 1;
        self.count += 1;
        id
    }

    /// Removes a peer; its id may be reused from now on.
    pub(crate) fn remove(&mut self, id: PeerId) -> Option<Box<Entry>> {
        let e = self.slots.get_mut(id as usize).and_then(Option::take)?;
        if self.by_addr.get(&e.addr) == Some(&id) {
            self.by_addr.remove(&e.addr);
        }
        if let Some(n) = self.by_ip.get_mut(&e.addr.ip()) {
            *n -= 1;
            if *n == 0 {
                self.by_ip.remove(&e.addr.ip());
            }
        }
        self.free.push(id);
        self.count -= 1;
        Some(e)
    }

    #[inline]
    pub(crate) fn get(&self, id: PeerId) -> Option<&Entry> {
        self.slots.get(id as usize)?.as_deref()
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, id: PeerId) -> Option<&mut Entry> {
        self.slots.get_mut(id as usize)?.as_deref_mut()
    }

    /// Moves a peer to another address (a connect token's next server). False, and nothing
    /// changed, if another peer is there.
    pub(crate) fn rekey(&mut self, id: PeerId, addr: SocketAddr) -> bool {
        if self.by_addr.get(&addr).is_some_and(|&other| other != id) {
            return false;
        }
        let Some(e) = self.slots.get_mut(id as usize).and_then(Option::as_mut) else {
            return false;
        };
        if self.by_addr.get(&e.addr) == Some(&id) {
            self.by_addr.remove(&e.addr);
        }
        e.addr = addr;
        self.by_addr.insert(addr, id);
        true
    }

    /// The peer at `addr`, if any.
    #[inline]
    pub(crate) fn find(&self, addr: SocketAddr) -> Option<PeerId> {
        self.by_addr.get(&addr).copied()
    }

    /// Number of peers at this IP address (any port).
    pub(crate) fn count_ip(&self, ip: IpAddr) -> usize {
        self.by_ip.get(&ip).copied().unwrap_or(0)
    }

    /// Number of peers.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// One past the highest id in use (ids below it may be free).
    pub(crate) fn id_bound(&self) -> PeerId {
        self.slots.len() as PeerId
    }

    /// Every peer.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Entry> + '_ {
        self.slots.iter().flatten().map(|e| &**e)
    }
}

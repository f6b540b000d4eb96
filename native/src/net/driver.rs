//! The only socket-touching part: a non-blocking `UdpSocket` driving an
//! [`Endpoint`], optionally through a [`Conditioner`] on the outgoing path.

use std::io;
use std::net::{SocketAddr, UdpSocket};

use super::conditioner::{Conditioner, ConditionerConfig};
use super::endpoint::Endpoint;
use super::udp_sys;
use super::Config;

/// Socket buffer size requested (the kernel may cap it, e.g. at `net.core.rmem_max`).
const SOCKET_BUFFER_BYTES: i32 = 4 << 20;

/// What one `service` call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServiceReport {
    /// Datagrams read from the socket.
    pub received: usize,
    /// Datagrams written to the socket.
    pub sent: usize,
}

/// A UDP socket plus an [`Endpoint`] (plus an optional [`Conditioner`]).
#[derive(Debug)]
pub struct Driver {
    socket: UdpSocket,
    local: SocketAddr,
    endpoint: Endpoint,
    conditioner: Option<Conditioner>,
    buf: Vec<u8>,
    send_errors: u64,
    tx: Tx,
    /// Sent datagram buffers on their way back to the endpoint's pool.
    done: Vec<Vec<u8>>,
}

/// Outgoing datagrams gathered into one segmented send (`UDP_SEGMENT`) while
/// they go to one address with one size (a shorter one may end the run). The
/// datagram buffers themselves are handed to the kernel (scatter-gather), then
/// returned for reuse.
#[derive(Debug)]
struct Tx {
    bufs: Vec<Vec<u8>>,
    bytes: usize,
    addr: Option<SocketAddr>,
    seg: usize,
    /// The run ended with a shorter datagram: nothing more may join it.
    closed: bool,
    /// Segmentation offload works here (cleared on the first refusal).
    gso: bool,
}

/// Counters a send updates.
struct Sent<'a> {
    sent: &'a mut usize,
    errors: &'a mut u64,
}

impl Tx {
    /// Adds a datagram to the run (sending the run first if it cannot join); buffers that
    /// have been sent come back through `done`.
    fn push(&mut self, socket: &UdpSocket, out: &mut Sent<'_>, a: SocketAddr, d: Vec<u8>, done: &mut Vec<Vec<u8>>) {
        if !self.bufs.is_empty()
            && (self.addr != Some(a)
                || d.len() > self.seg
                || self.closed
                || self.bytes + d.len() > udp_sys::MAX_GSO_BYTES
                || self.bufs.len() >= udp_sys::MAX_SEGMENTS)
        {
            self.flush(socket, out, done);
        }
        if self.bufs.is_empty() {
            self.addr = Some(a);
            self.seg = d.len();
            self.closed = false;
        } else if d.len() < self.seg {
            self.closed = true;
        }
        self.bytes += d.len();
        self.bufs.push(d);
    }

    fn flush(&mut self, socket: &UdpSocket, out: &mut Sent<'_>, done: &mut Vec<Vec<u8>>) {
        let Some(addr) = self.addr else { return };
        if self.bufs.is_empty() {
            return;
        }
        let n = self.bufs.len();
        let mut one_by_one = n == 1 || !self.gso;
        if !one_by_one {
            match udp_sys::send_segments(socket, &addr, &self.bufs, self.seg) {
                Ok(()) => *out.sent += n,
                Err(e) if udp_sys::is_offload_refusal(&e) => {
                    // No offload here: send them one by one from now on.
                    self.gso = false;
                    one_by_one = true;
                }
                Err(_) => *out.errors += n as u64,
            }
        }
        if one_by_one {
            for d in &self.bufs {
                match socket.send_to(d, addr) {
                    Ok(_) => *out.sent += 1,
                    Err(_) => *out.errors += 1,
                }
            }
        }
        done.append(&mut self.bufs);
        self.bytes = 0;
        self.addr = None;
    }
}

impl Driver {
    /// Binds a non-blocking socket (see [`Driver::socket`]) and runs a new endpoint on it.
    pub fn bind(addr: SocketAddr, config: Config, seed: u64) -> io::Result<Self> {
        Self::with_socket(Self::socket(addr)?, Endpoint::new(config, seed))
    }

    /// A non-blocking socket bound to `addr` (with enlarged buffers and the offloads on Linux), for
    /// [`Driver::with_socket`]: for an endpoint that needs the bound address first.
    pub fn socket(addr: SocketAddr) -> io::Result<UdpSocket> {
        let socket = UdpSocket::bind(addr)?;
        socket.set_nonblocking(true)?;
        udp_sys::enlarge_buffers(&socket, SOCKET_BUFFER_BYTES);
        udp_sys::enable_gro(&socket);
        Ok(socket)
    }

    /// A driver running `endpoint` on a socket from [`Driver::socket`].
    pub fn with_socket(socket: UdpSocket, endpoint: Endpoint) -> io::Result<Self> {
        let local = socket.local_addr()?;
        Ok(Driver {
            socket,
            local,
            endpoint,
            conditioner: None,
            buf: vec![0; 65_536],
            send_errors: 0,
            tx: Tx {
                bufs: Vec::with_capacity(udp_sys::MAX_SEGMENTS),
                bytes: 0,
                addr: None,
                seg: 0,
                closed: false,
                gso: udp_sys::SEGMENTATION,
            },
            done: Vec::with_capacity(udp_sys::MAX_SEGMENTS),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The protocol state machine, for `connect`/`send`/`poll_event` and friends.
    pub fn endpoint(&mut self) -> &mut Endpoint {
        &mut self.endpoint
    }

    /// Installs, changes or (with `None`) removes the outgoing link conditioner.
    /// Changing keeps held datagrams; removing drops them (the protocol recovers).
    pub fn set_conditioner(&mut self, c: Option<ConditionerConfig>) {
        match (c, self.conditioner.as_mut()) {
            (Some(cfg), Some(cur)) => cur.set_config(cfg),
            (Some(cfg), None) => self.conditioner = Some(Conditioner::new(cfg)),
            (None, _) => self.conditioner = None,
        }
    }

    /// The installed conditioner, if any.
    pub fn conditioner(&self) -> Option<&Conditioner> {
        self.conditioner.as_ref()
    }

    /// Datagrams the socket refused to send (they are dropped; reliability recovers).
    pub fn send_errors(&self) -> u64 {
        self.send_errors
    }

    /// Reads up to `max_datagrams` datagrams, runs the endpoint's timers and flushes
    /// everything due (through the conditioner if one is set). Never blocks.
    pub fn service(&mut self, now: u64, max_datagrams: usize) -> io::Result<ServiceReport> {
        let mut rep = ServiceReport::default();
        while rep.received < max_datagrams {
            match udp_sys::recv(&self.socket, &mut self.buf) {
                Ok((0, from, _)) => {
                    // An empty datagram is still one: the link drops it, and counts it.
                    rep.received += 1;
                    self.endpoint.handle_datagram(now, from, &[]);
                }
                Ok((n, from, seg)) => {
                    // With receive offload one read may hold several datagrams of `seg` bytes.
                    let seg = seg.unwrap_or(n).max(1);
                    for d in self.buf[..n].chunks(seg) {
                        rep.received += 1;
                        self.endpoint.handle_datagram(now, from, d);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // ICMP errors from earlier sends surface here on some systems: skip them.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {}
                Err(e) => return Err(e),
            }
        }
        self.endpoint.update(now);
        let Driver {
            socket,
            endpoint,
            conditioner,
            send_errors,
            tx,
            done,
            ..
        } = self;
        let mut out = Sent {
            sent: &mut rep.sent,
            errors: send_errors,
        };
        match conditioner.as_mut() {
            Some(c) => {
                endpoint.drain_transmits(|a, d| c.push(now, a, d));
                while let Some((a, d)) = c.pop_due(now) {
                    tx.push(socket, &mut out, a, d, done);
                }
            }
            None => {
                while let Some((a, d)) = endpoint.poll_transmit() {
                    tx.push(socket, &mut out, a, d, done);
                    for b in done.drain(..) {
                        endpoint.recycle(b);
                    }
                }
            }
        }
        tx.flush(socket, &mut out, done);
        for b in done.drain(..) {
            endpoint.recycle(b);
        }
        Ok(rep)
    }
}

//! The only socket-touching part: a non-blocking `UdpSocket` driving an
//! [`Endpoint`], optionally through a [`Conditioner`] on the outgoing path.

use std::io;
use std::net::{SocketAddr, UdpSocket};

use super::conditioner::{Conditioner, ConditionerConfig};
use super::endpoint::Endpoint;
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
}

impl Driver {
    /// Binds a non-blocking socket (with enlarged buffers on Linux).
    pub fn bind(addr: SocketAddr, config: Config, seed: u64) -> io::Result<Self> {
        let socket = UdpSocket::bind(addr)?;
        socket.set_nonblocking(true)?;
        sys::enlarge_buffers(&socket, SOCKET_BUFFER_BYTES);
        let local = socket.local_addr()?;
        Ok(Driver {
            socket,
            local,
            endpoint: Endpoint::new(config, seed),
            conditioner: None,
            buf: vec![0; 65_536],
            send_errors: 0,
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
            match self.socket.recv_from(&mut self.buf) {
                Ok((n, from)) => {
                    rep.received += 1;
                    self.endpoint.handle_datagram(now, from, &self.buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // ICMP errors from earlier sends surface here on some systems: skip them.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        self.endpoint.update(now);
        let socket = &self.socket;
        let errors = &mut self.send_errors;
        let sent = &mut rep.sent;
        let mut emit = |addr: SocketAddr, d: &[u8]| match socket.send_to(d, addr) {
            Ok(_) => *sent += 1,
            Err(_) => *errors += 1,
        };
        match self.conditioner.as_mut() {
            Some(c) => {
                self.endpoint.drain_transmits(|a, d| c.push(now, a, d));
                c.drain_due(now, &mut emit);
            }
            None => self.endpoint.drain_transmits(&mut emit),
        }
        Ok(rep)
    }
}

#[cfg(target_os = "linux")]
mod sys {
    use std::os::fd::AsRawFd;
    use std::os::raw::{c_int, c_void};

    extern "C" {
        fn setsockopt(fd: c_int, level: c_int, name: c_int, value: *const c_void, len: u32) -> c_int;
    }

    const SOL_SOCKET: c_int = 1;
    const SO_SNDBUF: c_int = 7;
    const SO_RCVBUF: c_int = 8;

    /// Best effort: asks for larger send/receive buffers (errors ignored).
    pub(super) fn enlarge_buffers(s: &std::net::UdpSocket, bytes: i32) {
        let fd = s.as_raw_fd();
        for opt in [SO_SNDBUF, SO_RCVBUF] {
            let v: c_int = bytes;
            // SAFETY: fd is a live socket owned by `s`; `v` outlives the call and its size is passed.
            unsafe {
                setsockopt(fd, SOL_SOCKET, opt, &v as *const c_int as *const c_void, 4);
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    /// No-op off Linux.
    pub(super) fn enlarge_buffers(_s: &std::net::UdpSocket, _bytes: i32) {}
}

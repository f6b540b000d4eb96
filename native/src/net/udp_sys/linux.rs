//! Linux UDP offloads, declared by hand (std only): segmentation offload on
//! send (`UDP_SEGMENT`: one `sendmsg` carries many equal-size datagrams, which
//! the kernel splits, or passes whole over loopback) and receive offload
//! (`UDP_GRO`: one `recvmsg` may return several datagrams back to back, with
//! their size in a control message). The datagrams on the wire are unchanged.
//! The struct layouts and constants are Linux's (x86_64 and aarch64 alike).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::raw::{c_int, c_void};

use super::MAX_SEGMENTS;

const SOL_SOCKET: c_int = 1;
const SO_SNDBUF: c_int = 7;
const SO_RCVBUF: c_int = 8;
const SOL_UDP: c_int = 17;
const UDP_SEGMENT: c_int = 103;
const UDP_GRO: c_int = 104;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
const MSG_DONTWAIT: c_int = 0x40;

/// Segmentation offload may work here (the first refusal turns it off for the socket).
pub const SEGMENTATION: bool = true;

#[repr(C)]
struct IoVec {
    base: *mut c_void,
    len: usize,
}

#[repr(C)]
struct MsgHdr {
    name: *mut c_void,
    namelen: u32,
    iov: *mut IoVec,
    iovlen: usize,
    control: *mut c_void,
    controllen: usize,
    flags: c_int,
}

#[repr(C)]
struct CmsgHdr {
    len: usize,
    level: c_int,
    kind: c_int,
}

extern "C" {
    fn setsockopt(fd: c_int, level: c_int, name: c_int, value: *const c_void, len: u32) -> c_int;
    fn sendmsg(fd: c_int, msg: *const MsgHdr, flags: c_int) -> isize;
    fn recvmsg(fd: c_int, msg: *mut MsgHdr, flags: c_int) -> isize;
}

fn set_int(fd: c_int, level: c_int, name: c_int, v: c_int) -> bool {
    // SAFETY: `v` lives across the call and its size is passed; fd is the caller's live socket.
    unsafe { setsockopt(fd, level, name, &v as *const c_int as *const c_void, 4) == 0 }
}

/// Best effort: larger send and receive buffers.
pub fn enlarge_buffers(socket: &UdpSocket, bytes: c_int) {
    set_int(socket.as_raw_fd(), SOL_SOCKET, SO_SNDBUF, bytes);
    set_int(socket.as_raw_fd(), SOL_SOCKET, SO_RCVBUF, bytes);
}

/// Asks for receive offload; false when the kernel does not offer it.
pub fn enable_gro(socket: &UdpSocket) -> bool {
    set_int(socket.as_raw_fd(), SOL_UDP, UDP_GRO, 1)
}

/// Whether a failed segmented send means "no offload here" (EIO, EINVAL, ENOPROTOOPT,
/// EOPNOTSUPP) rather than a failed send: the caller then sends one datagram at a time.
pub fn is_offload_refusal(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(5 | 22 | 92 | 95))
}

/// A sockaddr_in/sockaddr_in6 in a 28-byte buffer; returns its length.
fn encode_addr(a: &SocketAddr, out: &mut [u8; 28]) -> u32 {
    *out = [0; 28];
    match a {
        SocketAddr::V4(v4) => {
            out[0..2].copy_from_slice(&AF_INET.to_ne_bytes());
            out[2..4].copy_from_slice(&v4.port().to_be_bytes());
            out[4..8].copy_from_slice(&v4.ip().octets());
            16
        }
        SocketAddr::V6(v6) => {
            out[0..2].copy_from_slice(&AF_INET6.to_ne_bytes());
            out[2..4].copy_from_slice(&v6.port().to_be_bytes());
            out[4..8].copy_from_slice(&v6.flowinfo().to_be_bytes());
            out[8..24].copy_from_slice(&v6.ip().octets());
            out[24..28].copy_from_slice(&v6.scope_id().to_ne_bytes());
            28
        }
    }
}

fn decode_addr(b: &[u8]) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes([b[0], b[1]]);
    let port = u16::from_be_bytes([b[2], b[3]]);
    match family {
        AF_INET => {
            let ip = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
            Some(SocketAddr::V4(SocketAddrV4::new(ip, port)))
        }
        AF_INET6 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(&b[8..24]);
            let flow = u32::from_be_bytes(b[4..8].try_into().ok()?);
            let scope = u32::from_ne_bytes(b[24..28].try_into().ok()?);
            Some(SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(o), port, flow, scope)))
        }
        _ => None,
    }
}

/// Sends the concatenation of `bufs` to `addr` as datagrams of `seg` bytes (the last may be
/// shorter) in one call, gathering straight from the buffers (no copy into one).
pub fn send_segments(socket: &UdpSocket, addr: &SocketAddr, bufs: &[Vec<u8>], seg: usize) -> io::Result<()> {
    if bufs.is_empty() || bufs.len() > MAX_SEGMENTS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "1..=64 buffers per segmented send",
        ));
    }
    let mut name = [0u8; 28];
    let namelen = encode_addr(addr, &mut name);
    let mut iov: [IoVec; MAX_SEGMENTS] = std::array::from_fn(|_| IoVec {
        base: std::ptr::null_mut(),
        len: 0,
    });
    for (v, b) in iov.iter_mut().zip(bufs) {
        v.base = b.as_ptr() as *mut c_void;
        v.len = b.len();
    }
    // CMSG_SPACE(sizeof(u16)) = 24, 8-byte aligned.
    let mut control = [0u64; 3];
    let hdr = CmsgHdr {
        len: std::mem::size_of::<CmsgHdr>() + 2,
        level: SOL_UDP,
        kind: UDP_SEGMENT,
    };
    // SAFETY: control is 24 bytes, 8-aligned: room for the 16-byte header and 2 data bytes.
    unsafe {
        std::ptr::write(control.as_mut_ptr() as *mut CmsgHdr, hdr);
        std::ptr::write_unaligned((control.as_mut_ptr() as *mut u8).add(16) as *mut u16, seg as u16);
    }
    let msg = MsgHdr {
        name: name.as_mut_ptr() as *mut c_void,
        namelen,
        iov: iov.as_mut_ptr(),
        iovlen: bufs.len(),
        control: control.as_mut_ptr() as *mut c_void,
        controllen: 24,
        flags: 0,
    };
    // SAFETY: every pointer in msg refers to a local or to `bufs`, all outliving the call; the
    // kernel only reads them.
    let n = unsafe { sendmsg(socket.as_raw_fd(), &msg, MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Receives into `buf`: (bytes, sender, segment size when the kernel coalesced several datagrams).
pub fn recv(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, Option<usize>)> {
    let mut name = [0u8; 128];
    let mut iov = IoVec {
        base: buf.as_mut_ptr() as *mut c_void,
        len: buf.len(),
    };
    let mut control = [0u64; 8];
    let mut msg = MsgHdr {
        name: name.as_mut_ptr() as *mut c_void,
        namelen: name.len() as u32,
        iov: &mut iov,
        iovlen: 1,
        control: control.as_mut_ptr() as *mut c_void,
        controllen: std::mem::size_of_val(&control),
        flags: 0,
    };
    // SAFETY: every pointer in msg refers to a local (or `buf`) that outlives the call, with its true length.
    let n = unsafe { recvmsg(socket.as_raw_fd(), &mut msg, MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let from = decode_addr(&name)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "datagram from an unknown address family"))?;
    let mut seg = None;
    let ctl = &control;
    let ctl_bytes = msg.controllen.min(std::mem::size_of_val(ctl));
    // SAFETY: control is a plain local array; reading its bytes is always valid.
    let ctl_bytes: &[u8] = unsafe { std::slice::from_raw_parts(ctl.as_ptr() as *const u8, ctl_bytes) };
    let mut p = 0;
    while p + 16 <= ctl_bytes.len() {
        let len = usize::from_ne_bytes(ctl_bytes[p..p + 8].try_into().expect("8 bytes"));
        let level = c_int::from_ne_bytes(ctl_bytes[p + 8..p + 12].try_into().expect("4 bytes"));
        let kind = c_int::from_ne_bytes(ctl_bytes[p + 12..p + 16].try_into().expect("4 bytes"));
        if len < 16 || p + len > ctl_bytes.len() {
            break;
        }
        if level == SOL_UDP && kind == UDP_GRO && len >= 16 + 2 {
            let s = u16::from_ne_bytes([ctl_bytes[p + 16], ctl_bytes[p + 17]]) as usize;
            if s > 0 {
                seg = Some(s);
            }
        }
        p += (len + 7) & !7;
    }
    Ok((n as usize, from, seg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_round_trip_socket_addresses_through_sockaddr_bytes() {
        for a in ["127.0.0.1:4000", "[::1]:65535", "[fe80::1%2]:9"] {
            let a: SocketAddr = a.parse().unwrap();
            let mut b = [0u8; 28];
            let n = encode_addr(&a, &mut b);
            assert_eq!(n, if a.is_ipv6() { 28 } else { 16 });
            assert_eq!(decode_addr(&b), Some(a));
        }
        assert_eq!(decode_addr(&[0u8; 28]), None);
    }

    #[test]
    fn should_send_segments_and_receive_them_split_or_coalesced() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_nonblocking(true).unwrap();
        let gro = enable_gro(&b);
        let data: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        // 1000 bytes as 300-byte segments: 300, 300, 300, 100, gathered from uneven buffers.
        let bufs = vec![data[..300].to_vec(), data[300..700].to_vec(), data[700..].to_vec()];
        send_segments(&a, &b.local_addr().unwrap(), &bufs, 300).unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while got.len() < 4 && std::time::Instant::now() < deadline {
            match recv(&b, &mut buf) {
                Ok((n, from, seg)) => {
                    assert_eq!(from, a.local_addr().unwrap());
                    let s = seg.unwrap_or(n);
                    for c in buf[..n].chunks(s) {
                        got.push(c.to_vec());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("recv: {e} (gro {gro})"),
            }
        }
        let sizes: Vec<usize> = got.iter().map(|d| d.len()).collect();
        assert_eq!(sizes, vec![300, 300, 300, 100]);
        assert_eq!(got.concat(), data);
    }
}

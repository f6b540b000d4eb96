//! The fallback where Linux's offloads are not available: std's `UdpSocket`
//! alone, one datagram per call. Socket buffers keep the system's default size
//! (std has no call to change them).

use std::io;
use std::net::{SocketAddr, UdpSocket};

/// No segmentation offload: the driver sends one datagram at a time.
pub const SEGMENTATION: bool = false;

/// Does nothing: std cannot resize socket buffers.
pub fn enlarge_buffers(_socket: &UdpSocket, _bytes: i32) {}

/// No receive offload here.
pub fn enable_gro(_socket: &UdpSocket) -> bool {
    false
}

/// Never sends: segmentation offload is Linux's. The driver does not call it
/// (see [`SEGMENTATION`]); if it did, [`is_offload_refusal`] would turn it off.
pub fn send_segments(_socket: &UdpSocket, _addr: &SocketAddr, _bufs: &[Vec<u8>], _seg: usize) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "UDP segmentation offload needs Linux",
    ))
}

/// Whether a failed segmented send means "no offload here".
pub fn is_offload_refusal(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Unsupported
}

/// Receives one datagram into `buf`: (bytes, sender, no segment size).
pub fn recv(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, Option<usize>)> {
    let (n, from) = socket.recv_from(buf)?;
    Ok((n, from, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_receive_one_datagram_per_call_and_refuse_segmented_sends() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        let to = b.local_addr().unwrap();
        let e = send_segments(&a, &to, &[vec![1, 2, 3]], 3).unwrap_err();
        assert!(is_offload_refusal(&e));
        a.send_to(&[7; 300], to).unwrap();
        a.send_to(&[8; 100], to).unwrap();
        let mut buf = [0u8; 2048];
        assert_eq!(recv(&b, &mut buf).unwrap(), (300, a.local_addr().unwrap(), None));
        assert_eq!(recv(&b, &mut buf).unwrap(), (100, a.local_addr().unwrap(), None));
        assert_eq!(buf[0], 8);
    }
}

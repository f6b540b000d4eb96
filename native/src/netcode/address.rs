//! Server addresses as netcode writes them in connect tokens: a type byte
//! (1 = IPv4, 2 = IPv6), the address (4 bytes, or 8 little-endian 16-bit
//! groups) and a little-endian port.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use super::wire::{Reader, Writer};

/// Address type byte of an IPv4 address.
pub const ADDRESS_IPV4: u8 = 1;
/// Address type byte of an IPv6 address.
pub const ADDRESS_IPV6: u8 = 2;

/// The address as netcode compares addresses: IP and port only (no IPv6 flow
/// label or scope), and an IPv4-mapped IPv6 address as the IPv4 address.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(_) => addr,
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => SocketAddr::V6(SocketAddrV6::new(*v6.ip(), v6.port(), 0, 0)),
        },
    }
}

pub(crate) fn write(w: &mut Writer<'_>, addr: &SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => {
            w.u8(ADDRESS_IPV4);
            w.bytes(&ip.octets());
        }
        IpAddr::V6(ip) => {
            w.u8(ADDRESS_IPV6);
            for g in ip.segments() {
                w.u16(g);
            }
        }
    }
    w.u16(addr.port());
}

/// Why an address could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressError {
    /// The input ended inside the address.
    Truncated,
    /// The type byte was neither 1 (IPv4) nor 2 (IPv6).
    BadType(u8),
}

pub(crate) fn read(r: &mut Reader<'_>) -> Result<SocketAddr, AddressError> {
    let t = r.u8().ok_or(AddressError::Truncated)?;
    let ip = match t {
        ADDRESS_IPV4 => IpAddr::V4(Ipv4Addr::from(r.array::<4>().ok_or(AddressError::Truncated)?)),
        ADDRESS_IPV6 => {
            let mut g = [0u16; 8];
            for s in g.iter_mut() {
                *s = r.u16().ok_or(AddressError::Truncated)?;
            }
            IpAddr::V6(Ipv6Addr::from(g))
        }
        other => return Err(AddressError::BadType(other)),
    };
    let port = r.u16().ok_or(AddressError::Truncated)?;
    Ok(SocketAddr::new(ip, port))
}

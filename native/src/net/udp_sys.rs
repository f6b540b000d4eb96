//! The socket calls the driver makes beyond std's `UdpSocket`: larger socket
//! buffers, segmentation offload on send and receive offload. Linux has all
//! three ([`linux`]); every other target (and a Linux build with
//! `--cfg tsage_portable`, which checks this fallback on the host) gets
//! [`portable`], plain std calls that send and receive one datagram at a time.
//! The datagrams on the wire are the same either way.

#[cfg(all(target_os = "linux", not(tsage_portable)))]
mod linux;
#[cfg(all(target_os = "linux", not(tsage_portable)))]
pub use linux::{enable_gro, enlarge_buffers, is_offload_refusal, recv, send_segments, SEGMENTATION};

#[cfg(not(all(target_os = "linux", not(tsage_portable))))]
mod portable;
#[cfg(not(all(target_os = "linux", not(tsage_portable))))]
pub use portable::{enable_gro, enlarge_buffers, is_offload_refusal, recv, send_segments, SEGMENTATION};

/// Most segments one segmented send may carry (Linux's UDP_MAX_SEGMENTS).
pub const MAX_SEGMENTS: usize = 64;
/// Most bytes one segmented send may carry (an IP datagram's payload limit, with room for headers).
pub const MAX_GSO_BYTES: usize = 65_000;

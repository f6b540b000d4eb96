//! Wraparound-safe sequence number arithmetic (RFC 1982 serial numbers, as ENet does it).
//!
//! `a` is "after" `b` when the forward distance from `b` to `a` is less than half
//! the number space, so comparisons keep working across the wrap.

/// Signed distance from `b` to `a` for 16-bit sequence numbers (`a - b`).
#[inline]
pub fn diff16(a: u16, b: u16) -> i16 {
    a.wrapping_sub(b) as i16
}

/// True when `a` comes strictly after `b` in 16-bit sequence space.
#[inline]
pub fn gt16(a: u16, b: u16) -> bool {
    diff16(a, b) > 0
}

/// True when `a` comes strictly before `b` in 16-bit sequence space.
#[inline]
pub fn lt16(a: u16, b: u16) -> bool {
    diff16(a, b) < 0
}

/// Signed distance from `b` to `a` for 32-bit sequence numbers (`a - b`).
#[inline]
pub fn diff32(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

/// True when `a` comes strictly after `b` in 32-bit sequence space.
#[inline]
pub fn gt32(a: u32, b: u32) -> bool {
    diff32(a, b) > 0
}

/// True when `a` comes strictly before `b` in 32-bit sequence space.
#[inline]
pub fn lt32(a: u32, b: u32) -> bool {
    diff32(a, b) < 0
}

/// Extends a 16-bit wire value to the full 64-bit counter nearest `reference`
/// (within half the 16-bit space either way; clamped at zero).
#[inline]
pub fn extend16(reference: u64, v: u16) -> u64 {
    let d = diff16(v, reference as u16) as i64;
    (reference as i64 + d).max(0) as u64
}

/// Extends a 32-bit value to the full 64-bit counter nearest `reference`.
#[inline]
pub fn extend32(reference: u64, v: u32) -> u64 {
    let d = diff32(v, reference as u32) as i64;
    (reference as i64 + d).max(0) as u64
}

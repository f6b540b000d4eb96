//! CRC32C (Castagnoli, the polynomial iSCSI and SCTP use): the plain link's integrity
//! check on every datagram. It is not a MAC: it catches corruption (a flipped bit, a
//! truncated or spliced datagram), not a forger, who can compute it as easily as we can.
//! The secure link's AEAD replaces it.
//!
//! The CPU's own instruction does the work where there is one (SSE 4.2 on x86-64, the
//! CRC extension on AArch64), detected at run time; elsewhere a slicing-by-8 table does.
//! Both give the same answer, which the tests check on random inputs.
//!
//! The instruction takes three cycles and can start one per cycle, so a datagram is
//! read as three interleaved streams of [`STRIDE`] bytes at a time, whose CRCs are then
//! joined: the CRC register is linear, so the register after `A ‖ B` is the register
//! after `A` carried through `|B|` zero bytes ([`shift`], four table lookups) xor the
//! register of `B` alone.

/// The reflected Castagnoli polynomial.
const POLY: u32 = 0x82F6_3B78;

/// Bytes of each of the three streams the hardware path interleaves.
const STRIDE: usize = 128;

/// `ZEROS[k][b]`: the register `b << 8k` carried through [`STRIDE`] zero bytes.
static ZEROS: [[u32; 256]; 4] = zeros();

const fn zeros() -> [[u32; 256]; 4] {
    let t = tables();
    let mut z = [[0u32; 256]; 4];
    let mut k = 0;
    while k < 4 {
        let mut b = 0;
        while b < 256 {
            let mut r = (b as u32) << (8 * k);
            let mut n = 0;
            while n < STRIDE {
                r = (r >> 8) ^ t[0][(r & 0xff) as usize];
                n += 1;
            }
            z[k][b] = r;
            b += 1;
        }
        k += 1;
    }
    z
}

/// The CRC register `r` carried through [`STRIDE`] zero bytes.
#[inline]
fn shift(r: u32) -> u32 {
    ZEROS[0][(r & 0xff) as usize]
        ^ ZEROS[1][((r >> 8) & 0xff) as usize]
        ^ ZEROS[2][((r >> 16) & 0xff) as usize]
        ^ ZEROS[3][(r >> 24) as usize]
}

/// Runs `step` (the CPU's eight-byte CRC instruction) over `data`, three streams at a time.
#[inline(always)]
fn interleaved(data: &[u8], step: impl Fn(u32, u64) -> u32, byte: impl Fn(u32, u8) -> u32) -> u32 {
    let mut c = !0u32;
    let mut d = data;
    while d.len() >= 3 * STRIDE {
        let (a, rest) = d.split_at(STRIDE);
        let (b, rest) = rest.split_at(STRIDE);
        let (e, rest) = rest.split_at(STRIDE);
        let (mut c0, mut c1, mut c2) = (c, 0u32, 0u32);
        for ((x, y), z) in a
            .as_chunks::<8>()
            .0
            .iter()
            .zip(b.as_chunks::<8>().0)
            .zip(e.as_chunks::<8>().0)
        {
            c0 = step(c0, u64::from_le_bytes(*x));
            c1 = step(c1, u64::from_le_bytes(*y));
            c2 = step(c2, u64::from_le_bytes(*z));
        }
        c = shift(shift(c0) ^ c1) ^ c2;
        d = rest;
    }
    let (chunks, rest) = d.as_chunks::<8>();
    for x in chunks {
        c = step(c, u64::from_le_bytes(*x));
    }
    for &x in rest {
        c = byte(c, x);
    }
    !c
}

/// Slicing-by-8 tables: `TABLES[0]` is the classic byte table, `TABLES[k][b]` the CRC of
/// byte `b` followed by `k` zero bytes.
static TABLES: [[u32; 256]; 8] = tables();

const fn tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut k = 1;
        while k < 8 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            k += 1;
        }
        i += 1;
    }
    t
}

/// The CRC32C of `data` (initial value and final xor `0xFFFF_FFFF`, as everyone uses it:
/// the CRC of `"123456789"` is `0xE306_9283`).
#[inline]
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("sse4.2") {
            // SAFETY: the CPU has SSE 4.2 (checked just above), the only feature `hw` needs.
            return unsafe { x86::hw(data) };
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("crc") {
            // SAFETY: the CPU has the CRC extension (checked just above), the only feature `hw` needs.
            return unsafe { arm::hw(data) };
        }
    }
    table(data)
}

/// The table-driven CRC32C (slicing by 8), for CPUs without a CRC instruction.
pub(crate) fn table(data: &[u8]) -> u32 {
    let t = &TABLES;
    let mut c = !0u32;
    let (chunks, rest) = data.as_chunks::<8>();
    for b in chunks {
        let lo = c ^ u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        c = t[7][(lo & 0xff) as usize]
            ^ t[6][((lo >> 8) & 0xff) as usize]
            ^ t[5][((lo >> 16) & 0xff) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][b[4] as usize]
            ^ t[2][b[5] as usize]
            ^ t[1][b[6] as usize]
            ^ t[0][b[7] as usize];
    }
    for &b in rest {
        c = (c >> 8) ^ t[0][((c ^ b as u32) & 0xff) as usize];
    }
    !c
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{_mm_crc32_u64, _mm_crc32_u8};

    /// CRC32C with the SSE 4.2 `crc32` instruction, eight bytes at a time.
    ///
    /// # Safety
    /// The CPU must support SSE 4.2.
    #[target_feature(enable = "sse4.2")]
    pub(super) unsafe fn hw(data: &[u8]) -> u32 {
        super::interleaved(
            data,
            |c, x| _mm_crc32_u64(c as u64, x) as u32,
            |c, b| _mm_crc32_u8(c, b),
        )
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use std::arch::aarch64::{__crc32cb, __crc32cd};

    /// CRC32C with the AArch64 CRC instructions, eight bytes at a time.
    ///
    /// # Safety
    /// The CPU must support the CRC extension.
    #[target_feature(enable = "crc")]
    pub(super) unsafe fn hw(data: &[u8]) -> u32 {
        super::interleaved(data, |c, x| __crc32cd(c, x), |c, b| __crc32cb(c, b))
    }
}

#[cfg(test)]
mod tests {
    use super::{crc32c, table};
    use crate::net::rng::Rng;

    #[test]
    fn should_match_the_standard_check_values() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(table(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
        // RFC 3720 B.4: 32 bytes of zeros, of 0xff, and ascending.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
        let ascending: Vec<u8> = (0..32).collect();
        assert_eq!(crc32c(&ascending), 0x46DD_794E);
    }

    #[test]
    fn should_give_the_same_crc_with_and_without_the_cpu_instruction() {
        let mut rng = Rng::new(0xC5C3);
        for len in (0..70)
            .chain(380..400)
            .chain(760..780)
            .chain([1199, 1200, 1201, 65_507])
        {
            let d: Vec<u8> = (0..len).map(|_| rng.next_u32() as u8).collect();
            assert_eq!(crc32c(&d), table(&d), "length {len}");
        }
    }

    #[test]
    fn should_catch_every_single_bit_flip_of_a_datagram() {
        let mut rng = Rng::new(7);
        let d: Vec<u8> = (0..1200).map(|_| rng.next_u32() as u8).collect();
        let good = crc32c(&d);
        let mut m = d.clone();
        for bit in 0..d.len() * 8 {
            m[bit / 8] ^= 1 << (bit % 8);
            assert_ne!(crc32c(&m), good, "bit {bit}");
            m[bit / 8] ^= 1 << (bit % 8);
        }
    }

    /// What the check costs per 1200-byte datagram, printed with `cargo test --release
    /// crc_cost -- --nocapture` (docs/net-protocol.md quotes it). It asserts only that both
    /// ways agree: a timing bound would fail on a loaded machine, not on a slow CRC.
    #[test]
    fn crc_cost_per_datagram() {
        let d = vec![0x5au8; 1200];
        let rounds = 200_000u32;
        let time = |f: fn(&[u8]) -> u32| {
            let t = std::time::Instant::now();
            let mut acc = 0u32;
            for i in 0..rounds {
                acc = acc.wrapping_add(f(std::hint::black_box(&d[..1200 - (i as usize & 1)])));
            }
            (t.elapsed().as_nanos() as f64 / rounds as f64, acc)
        };
        let (hw_ns, a) = time(crc32c);
        let (table_ns, b) = time(table);
        assert_eq!(a, b);
        println!("crc32c of a 1200-byte datagram: {hw_ns:.0} ns (this CPU's best), {table_ns:.0} ns (table)");
    }
}

//! Message commands inside a DATA payload (all integers little-endian).
//!
//! Commands exist in two encodings that differ only in the reliable-id field:
//! the *canonical* form kept in send queues and retransmission records carries
//! the id as a u32; the *wire* form carries its low 16 bits, or nothing when the
//! `K_ID_NEXT` flag says "previous reliable id in this packet plus one".

use super::{rd16, rd32};
use crate::net::Reliability;

/// Command kind bits 0..=2: reliability.
pub(crate) const K_REL_MASK: u8 = 0x07;
/// Command kind bit: this is a fragment.
pub(crate) const K_FRAG: u8 = 0x08;
/// Command kind bit (wire only): reliable id omitted, it is the previous one plus one.
pub(crate) const K_ID_NEXT: u8 = 0x10;
/// Bytes of fragment fields: total u32, count u32, index u32.
pub(crate) const FRAG_FIELDS: usize = 12;

/// Fragment fields: fragment `index` of `count` of a `total`-byte message.
/// Every fragment but the last carries `ceil(total / count)` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Frag {
    pub total: u32,
    pub count: u32,
    pub index: u32,
}

/// A parsed command; `payload` borrows the packet.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cmd<'a> {
    pub rel: Reliability,
    pub channel: u8,
    /// Reliable id: full u32 in canonical form, low 16 bits on the wire.
    pub id: u32,
    pub seq: u16,
    pub frag: Option<Frag>,
    pub payload: &'a [u8],
    /// Bytes this command occupies in the buffer it was parsed from.
    pub len: usize,
}

/// Whether a command carries the per-channel sequence field.
#[inline]
pub(crate) fn has_seq(rel: Reliability, frag: bool) -> bool {
    match rel {
        Reliability::Unreliable => frag,
        Reliability::Reliable => false,
        _ => true,
    }
}

#[inline]
pub(crate) fn varint_len(n: usize) -> usize {
    if n < 0x80 {
        1
    } else if n < 0x4000 {
        2
    } else {
        3
    }
}

/// Writes `n` as a varint (1 to 3 bytes) at the start of `out`; returns its length.
#[inline]
fn put_varint(out: &mut [u8], n: usize) -> usize {
    debug_assert!(n < 1 << 21);
    if n < 0x80 {
        out[0] = n as u8;
        1
    } else if n < 0x4000 {
        out[0] = (n as u8) | 0x80;
        out[1] = (n >> 7) as u8;
        2
    } else {
        out[0] = (n as u8) | 0x80;
        out[1] = ((n >> 7) as u8) | 0x80;
        out[2] = (n >> 14) as u8;
        3
    }
}

#[inline]
fn get_varint(b: &[u8], pos: &mut usize) -> Option<usize> {
    let mut v = 0usize;
    for i in 0..3 {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= ((byte & 0x7f) as usize) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Largest command header on the wire for a payload of `payload_len` bytes.
#[inline]
pub(crate) fn max_wire_header_len(frag: bool, payload_len: usize) -> usize {
    2 + 2 + 2 + if frag { FRAG_FIELDS } else { 0 } + varint_len(payload_len)
}

/// Bytes of a command in canonical form.
#[inline]
pub(crate) fn canonical_len(rel: Reliability, frag: bool, payload_len: usize) -> usize {
    2 + if rel.is_reliable() { 4 } else { 0 }
        + if has_seq(rel, frag) { 2 } else { 0 }
        + if frag { FRAG_FIELDS } else { 0 }
        + varint_len(payload_len)
        + payload_len
}

/// How a command's reliable id is written.
#[derive(Clone, Copy)]
enum IdField {
    /// Not reliable: no id.
    None,
    /// Canonical: the id as a u32.
    Full(u32),
    /// Wire: the low 16 bits.
    Low(u16),
    /// Wire: nothing, `K_ID_NEXT` says it follows the previous one.
    Next,
}

/// Appends one command; `id` chooses the form. The header is assembled on the
/// stack and appended with the payload in two copies (not a push per field).
#[inline]
fn encode(out: &mut Vec<u8>, rel: Reliability, channel: u8, id: IdField, seq: u16, frag: Option<Frag>, payload: &[u8]) {
    // kind, channel, id (4), seq (2), fragment fields (12), varint (3): at most 24 bytes.
    let mut h = [0u8; 24];
    let next = if matches!(id, IdField::Next) { K_ID_NEXT } else { 0 };
    h[0] = rel as u8 | if frag.is_some() { K_FRAG } else { 0 } | next;
    h[1] = channel;
    let mut n = 2;
    match id {
        IdField::Full(v) => {
            h[n..n + 4].copy_from_slice(&v.to_le_bytes());
            n += 4;
        }
        IdField::Low(v) => {
            h[n..n + 2].copy_from_slice(&v.to_le_bytes());
            n += 2;
        }
        IdField::None | IdField::Next => {}
    }
    if has_seq(rel, frag.is_some()) {
        h[n..n + 2].copy_from_slice(&seq.to_le_bytes());
        n += 2;
    }
    if let Some(f) = frag {
        h[n..n + 4].copy_from_slice(&f.total.to_le_bytes());
        h[n + 4..n + 8].copy_from_slice(&f.count.to_le_bytes());
        h[n + 8..n + 12].copy_from_slice(&f.index.to_le_bytes());
        n += FRAG_FIELDS;
    }
    let len = payload.len();
    n += put_varint(&mut h[n..], len);
    // The whole fixed-size array goes in (a few register moves, where a slice of
    // variable length would be a call to memcpy), then the unused tail is dropped.
    let start = out.len();
    out.reserve(h.len() + len);
    out.extend_from_slice(&h);
    out.truncate(start + n);
    out.extend_from_slice(payload);
}

/// Appends a command in canonical form (the reliable id as a u32).
pub(crate) fn encode_canonical(
    out: &mut Vec<u8>,
    rel: Reliability,
    channel: u8,
    id: u32,
    seq: u16,
    frag: Option<Frag>,
    payload: &[u8],
) {
    let id = if rel.is_reliable() {
        IdField::Full(id)
    } else {
        IdField::None
    };
    encode(out, rel, channel, id, seq, frag, payload);
}

/// Appends a command in wire form: the reliable id as its low 16 bits, or nothing
/// (`K_ID_NEXT`) when it is `prev_id + 1`. Returns whether it used `K_ID_NEXT`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn encode_wire(
    out: &mut Vec<u8>,
    rel: Reliability,
    channel: u8,
    id: u32,
    prev_id: Option<u16>,
    seq: u16,
    frag: Option<Frag>,
    payload: &[u8],
) -> bool {
    let field = if !rel.is_reliable() {
        IdField::None
    } else if prev_id.map(|p| p.wrapping_add(1)) == Some(id as u16) {
        IdField::Next
    } else {
        IdField::Low(id as u16)
    };
    encode(out, rel, channel, field, seq, frag, payload);
    matches!(field, IdField::Next)
}

/// Parses one command at the start of `b`. `canonical` selects the id width;
/// on the wire `prev_id` (the previous reliable id in the packet) resolves `K_ID_NEXT`
/// and is updated. `None` on any malformation.
pub(crate) fn parse_cmd<'a>(b: &'a [u8], canonical: bool, prev_id: &mut Option<u16>) -> Option<Cmd<'a>> {
    let kind = *b.first()?;
    let channel = *b.get(1)?;
    let rel = Reliability::from_u8(kind & K_REL_MASK)?;
    let frag = kind & K_FRAG != 0;
    let id_next = kind & K_ID_NEXT != 0;
    if kind & !(K_REL_MASK | K_FRAG | K_ID_NEXT) != 0 || (id_next && (canonical || !rel.is_reliable())) {
        return None;
    }
    if channel as usize >= crate::net::CHANNELS {
        return None;
    }
    let mut pos = 2;
    let mut id = 0u32;
    if rel.is_reliable() {
        if canonical {
            id = rd32(b, pos)?;
            pos += 4;
        } else if id_next {
            let p = (*prev_id)?;
            let v = p.wrapping_add(1);
            *prev_id = Some(v);
            id = v as u32;
        } else {
            let v = rd16(b, pos)?;
            pos += 2;
            *prev_id = Some(v);
            id = v as u32;
        }
    }
    let mut seq = 0u16;
    if has_seq(rel, frag) {
        seq = rd16(b, pos)?;
        pos += 2;
    }
    let mut f = None;
    if frag {
        f = Some(Frag {
            total: rd32(b, pos)?,
            count: rd32(b, pos + 4)?,
            index: rd32(b, pos + 8)?,
        });
        pos += FRAG_FIELDS;
    }
    let n = get_varint(b, &mut pos)?;
    let payload = b.get(pos..pos.checked_add(n)?)?;
    Some(Cmd {
        rel,
        channel,
        id,
        seq,
        frag: f,
        payload,
        len: pos + n,
    })
}

/// Wire size of a canonical command of `clen` bytes given the previous reliable id
/// written to the packet, and whether it would use `K_ID_NEXT`.
#[inline]
pub(crate) fn wire_len(clen: usize, reliable: bool, id: u32, prev_id: Option<u16>) -> (usize, bool) {
    if !reliable {
        return (clen, false);
    }
    let next = prev_id.map(|p| p.wrapping_add(1)) == Some(id as u16);
    (if next { clen - 4 } else { clen - 2 }, next)
}

/// Appends the canonical command `c` (exactly one command) to a datagram in wire form.
#[inline]
pub(crate) fn write_wire(out: &mut Vec<u8>, c: &[u8], reliable: bool, id: u32, next: bool) {
    if !reliable {
        out.extend_from_slice(c);
        return;
    }
    if next {
        out.push(c[0] | K_ID_NEXT);
        out.push(c[1]);
    } else {
        out.push(c[0]);
        out.push(c[1]);
        out.extend_from_slice(&(id as u16).to_le_bytes());
    }
    out.extend_from_slice(&c[6..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODES: [Reliability; 5] = [
        Reliability::Unreliable,
        Reliability::UnreliableSequenced,
        Reliability::Reliable,
        Reliability::ReliableOrdered,
        Reliability::ReliableSequenced,
    ];

    #[test]
    fn should_encode_wire_form_as_canonical_form_converted() {
        let payload: Vec<u8> = (0..200u8).collect();
        let frag = Frag {
            total: 1000,
            count: 5,
            index: 2,
        };
        for rel in MODES {
            for frag in [None, Some(frag)] {
                for prev in [None, Some(41u16), Some(7)] {
                    let id = 0x0001_002a; // low 16 bits 42: the next after 41
                    let mut canonical = Vec::new();
                    encode_canonical(&mut canonical, rel, 3, id, 9, frag, &payload);
                    assert_eq!(canonical.len(), canonical_len(rel, frag.is_some(), payload.len()));
                    let (wlen, next) = wire_len(canonical.len(), rel.is_reliable(), id, prev);
                    let mut via = Vec::new();
                    write_wire(&mut via, &canonical, rel.is_reliable(), id, next);
                    let mut direct = Vec::new();
                    assert_eq!(encode_wire(&mut direct, rel, 3, id, prev, 9, frag, &payload), next);
                    assert_eq!(direct, via, "{rel:?} {frag:?} {prev:?}");
                    assert_eq!(direct.len(), wlen);
                    // And it parses back to the same command.
                    let mut p = prev;
                    let cmd = parse_cmd(&direct, false, &mut p).expect("parses");
                    assert_eq!(
                        (cmd.rel, cmd.channel, cmd.frag, cmd.payload),
                        (rel, 3, frag, &payload[..])
                    );
                    if rel.is_reliable() {
                        assert_eq!(cmd.id, 42);
                    }
                    assert_eq!(cmd.len, direct.len());
                }
            }
        }
    }
}

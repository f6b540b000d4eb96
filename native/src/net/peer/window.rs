//! [`BitWindow`]: one bit per number in a sliding window of `SPAN` numbers,
//! addressed by the number itself (modulo `SPAN`). The caller keeps the window
//! from sliding more than `SPAN` ahead of the oldest bit it still needs, and
//! clears bits as the window's start moves past them.

/// A ring of `SPAN` bits, addressed by full (never wrapping) numbers.
#[derive(Debug)]
pub(crate) struct BitWindow<const SPAN: usize> {
    words: Box<[u64]>,
}

impl<const SPAN: usize> BitWindow<SPAN> {
    /// All bits clear.
    pub(crate) fn new() -> Self {
        BitWindow {
            words: vec![0; SPAN.div_ceil(64)].into_boxed_slice(),
        }
    }

    #[inline]
    fn at(n: u64) -> (usize, u64) {
        // SPAN is a constant, so this is a multiplication, not a division.
        let i = (n % SPAN as u64) as usize;
        (i / 64, 1 << (i % 64))
    }

    /// Whether `n`'s bit is set.
    #[inline]
    pub(crate) fn get(&self, n: u64) -> bool {
        let (w, m) = Self::at(n);
        self.words[w] & m != 0
    }

    /// Sets `n`'s bit.
    #[inline]
    pub(crate) fn set(&mut self, n: u64) {
        let (w, m) = Self::at(n);
        self.words[w] |= m;
    }

    /// Clears `n`'s bit.
    #[inline]
    pub(crate) fn clear(&mut self, n: u64) {
        let (w, m) = Self::at(n);
        self.words[w] &= !m;
    }

    /// Clears every bit.
    pub(crate) fn clear_all(&mut self) {
        self.words.iter_mut().for_each(|w| *w = 0);
    }
}

#[cfg(test)]
mod tests {
    use super::BitWindow;

    #[test]
    fn should_address_bits_by_number_modulo_the_span() {
        let mut w = BitWindow::<100>::new();
        w.set(5);
        w.set(99);
        assert!(w.get(5) && w.get(105) && w.get(99) && !w.get(6));
        w.clear(205);
        assert!(!w.get(5), "205 and 5 share a bit");
        w.set(130);
        w.clear_all();
        assert!(!w.get(130) && !w.get(99));
    }
}

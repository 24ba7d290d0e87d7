//! The values of one label set, packed into a single allocation.
//!
//! Processing a discovery update reads a few values of every target (the
//! address, the labels the rules name). Stored as one `String` each, every
//! read follows two pointers into a heap of hundreds of megabytes, the
//! per-value headers and then the bytes: a cache miss each. Packed, a
//! target's values are one block that a read finds in a line or two, and
//! they take less memory (no 24-byte header and heap block per value).

use crate::prefetch::prefetch_lines;

/// Values by position. The block holds `count + 1` bounds (native byte
/// order), then every value's bytes, concatenated: value `i` is
/// `block[bound(i)..bound(i + 1)]`, and `bound(0)`, where the text starts,
/// also gives the count. Bounds take two bytes each when the whole block
/// fits in 64 KiB (any real label set), else four: the block's length says
/// which. Two-byte bounds keep a Kubernetes target's block a cache line
/// shorter, and processing reads one such block per target.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PackedValues {
    block: Box<[u8]>,
}

const NARROW: usize = std::mem::size_of::<u16>();
const WIDE: usize = std::mem::size_of::<u32>();

/// Lines [`PackedValues::prefetch`] loads at most: a Kubernetes target's values.
const PREFETCHED_LINES: usize = 16;

impl PackedValues {
    pub fn new<'a>(values: impl ExactSizeIterator<Item = &'a str> + Clone) -> PackedValues {
        let text: usize = values.clone().map(str::len).sum();
        let narrow_start = (values.len() + 1) * NARROW;
        let width = if narrow_start + text <= usize::from(u16::MAX) { NARROW } else { WIDE };
        let text_start = (values.len() + 1) * width;
        let mut block = Vec::with_capacity(text_start + text);
        let mut bound = text_start;
        encode(&mut block, width, bound);
        for value in values.clone() {
            bound += value.len();
            encode(&mut block, width, bound);
        }
        for value in values {
            block.extend_from_slice(value.as_bytes());
        }
        PackedValues { block: block.into_boxed_slice() }
    }

    pub fn len(&self) -> usize {
        let width = self.width();
        // SAFETY: every block starts with its first bound (`new`).
        unsafe { self.bound(0, width) / width - 1 }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes per bound (see the type's docs).
    fn width(&self) -> usize {
        if self.block.len() <= usize::from(u16::MAX) { NARROW } else { WIDE }
    }

    /// Bound `index` of the table, read without a bounds check.
    ///
    /// # Safety
    /// `width` is [`width`](Self::width) and `index` at most the count of
    /// values, so that the bound lies in the table.
    #[inline(always)]
    unsafe fn bound(&self, index: usize, width: usize) -> usize {
        // SAFETY: by the caller's promise the `width` bytes at `index *
        // width` are within the table, which is within the block.
        unsafe {
            let at = self.block.as_ptr().add(index * width);
            if width == NARROW {
                usize::from(u16::from_ne_bytes(*at.cast::<[u8; NARROW]>()))
            } else {
                u32::from_ne_bytes(*at.cast::<[u8; WIDE]>()) as usize
            }
        }
    }

    /// The value at `index`; panics unless `index < len()`.
    #[inline]
    pub fn get(&self, index: usize) -> &str {
        // Processing reads several values of every target: one check that
        // `index` names a value, then two bound reads without further checks.
        let count = self.len();
        assert!(index < count, "value {index} of {count}");
        let width = self.width();
        // SAFETY: `index + 1` is at most the count, so both bounds lie in
        // the table, which ends where the text starts. `new` wrote them
        // ascending, from the table's end to the block's (never changed
        // since), so `start..end` lies in the block; the text is `&str`s
        // concatenated and the bounds fall between them, so the range is one
        // of those strings whole.
        unsafe {
            let (start, end) = (self.bound(index, width), self.bound(index + 1, width));
            std::str::from_utf8_unchecked(self.block.get_unchecked(start..end))
        }
    }

    /// Starts loading the block (up to a few cache lines), so that a caller
    /// about to read several label sets has all their cache misses in
    /// flight at once instead of one after the other.
    pub fn prefetch(&self) {
        prefetch_lines(&self.block[..], PREFETCHED_LINES);
    }

    /// Values `range.start..range.end`, in order.
    pub fn range(&self, range: std::ops::Range<usize>) -> Values<'_> {
        Values { values: self, range }
    }
}

/// Packed values in order (see [`PackedValues::range`]).
#[derive(Clone, Debug)]
pub struct Values<'a> {
    values: &'a PackedValues,
    range: std::ops::Range<usize>,
}

impl<'a> Iterator for Values<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        self.range.next().map(|index| self.values.get(index))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.range.size_hint()
    }
}

impl ExactSizeIterator for Values<'_> {}

impl Default for PackedValues {
    fn default() -> Self {
        PackedValues::new(std::iter::empty())
    }
}

fn encode(block: &mut Vec<u8>, width: usize, bound: usize) {
    if width == NARROW {
        let bound = u16::try_from(bound).expect("narrow bounds are chosen when they fit");
        block.extend_from_slice(&bound.to_ne_bytes());
    } else {
        let bound = u32::try_from(bound).expect("a label set's values fit in 4 GiB");
        block.extend_from_slice(&bound.to_ne_bytes());
    }
}

impl std::fmt::Debug for PackedValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.range(0..self.len())).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_back_as_packed() {
        assert_eq!(PackedValues::default(), PackedValues::new(std::iter::empty()));
        for values in [vec![], vec![""], vec!["a", "", "é€😀", "last value"], vec![""; 40]] {
            let packed = PackedValues::new(values.iter().copied());
            assert_eq!(packed.len(), values.len());
            let back: Vec<&str> = packed.range(0..packed.len()).collect();
            assert_eq!(back, values);
            assert_eq!(packed, PackedValues::new(values.iter().copied()));
        }
        // Both widths of bounds, on either side of 64 KiB.
        // Three two-byte bounds and "a": 65,528 more bytes fill 64 KiB exactly.
        for (long, width) in [(65_000, NARROW), (65_528, NARROW), (65_529, WIDE), (70_000, WIDE)] {
            let long = "v".repeat(long);
            let values = ["a", long.as_str()];
            let packed = PackedValues::new(values.iter().copied());
            assert_eq!(packed.width(), width, "{} bytes", long.len());
            assert_eq!(packed.range(0..packed.len()).collect::<Vec<_>>(), values, "{} bytes", long.len());
        }
        let packed = PackedValues::new(["x", "yz"].into_iter());
        assert_eq!(packed.get(1), "yz");
        assert_ne!(packed, PackedValues::new(["xy", "z"].into_iter()), "bounds are part of equality");
    }

    #[test]
    fn reading_past_the_last_value_panics_whatever_the_width() {
        let long = "v".repeat(70_000);
        for values in [vec![], vec!["a", "b"], vec!["a", long.as_str()]] {
            let packed = PackedValues::new(values.iter().copied());
            for index in [values.len(), values.len() + 1, usize::MAX / 2, usize::MAX] {
                let read = std::panic::catch_unwind(|| packed.get(index).len());
                assert!(read.is_err(), "value {index} of {} was read", values.len());
            }
        }
    }
}

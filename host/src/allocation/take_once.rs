//! A vector whose items are moved out one at a time, in any order, each at
//! most once.
//!
//! The allocator takes a window's new targets in identity order, which is
//! no order of the vectors discovery made them in. Wrapping every target
//! in an `Option` to take it would cost a pass over all of them first (each
//! moved into its wrapper) and leave a tag to test; here the vector is taken
//! over as it is and a bit per item records what was moved out. Owns only
//! that bookkeeping: what the items are is the caller's.

use std::mem::{ManuallyDrop, MaybeUninit};

pub struct TakeOnce<T> {
    /// Initialized but for the items taken.
    items: Vec<MaybeUninit<T>>,
    /// One bit per item, set once it is taken.
    taken: Vec<u64>,
}

impl<T> TakeOnce<T> {
    /// Takes over `items` (no copy: the same allocation).
    pub fn new(items: Vec<T>) -> TakeOnce<T> {
        let mut items = ManuallyDrop::new(items);
        let (pointer, len, capacity) = (items.as_mut_ptr(), items.len(), items.capacity());
        // SAFETY: `MaybeUninit<T>` has the size and alignment of `T`, so the
        // allocation, handed over whole, is one of `capacity` of them, the
        // first `len` initialized.
        let items = unsafe { Vec::from_raw_parts(pointer.cast::<MaybeUninit<T>>(), len, capacity) };
        TakeOnce { taken: vec![0; len.div_ceil(64)], items }
    }

    /// Where item `index` lies, taken or not: for prefetching.
    pub fn place(&self, index: usize) -> &MaybeUninit<T> {
        &self.items[index]
    }

    /// Moves item `index` out; panics if it was taken before.
    pub fn take(&mut self, index: usize) -> T {
        let item = &mut self.items[index];
        let (word, bit) = (index / 64, 1u64 << (index % 64));
        assert!(self.taken[word] & bit == 0, "item {index} is taken once");
        self.taken[word] |= bit;
        // SAFETY: the item was initialized and not taken before (its bit
        // was clear); its bit, now set, keeps it from being read or dropped
        // again.
        unsafe { item.assume_init_read() }
    }
}

impl<T> Drop for TakeOnce<T> {
    fn drop(&mut self) {
        for (word, &taken) in self.taken.iter().enumerate() {
            let mut left = !taken;
            while left != 0 {
                let index = word * 64 + left.trailing_zeros() as usize;
                if index >= self.items.len() {
                    break;
                }
                // SAFETY: an item whose bit is clear is initialized, and is
                // dropped once, here.
                unsafe { self.items[index].assume_init_drop() };
                left &= left - 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn items_are_taken_in_any_order_and_the_rest_dropped_once() {
        let counted = Rc::new(());
        for len in [0, 1, 63, 64, 65, 200] {
            let mut items = TakeOnce::new((0..len).map(|i| (i, counted.clone())).collect());
            assert_eq!(Rc::strong_count(&counted), 1 + len);
            // Every third item, from the end.
            let taken: Vec<usize> = (0..len).rev().filter(|i| i % 3 == 0).collect();
            for &index in &taken {
                assert_eq!(items.take(index).0, index);
            }
            assert_eq!(Rc::strong_count(&counted), 1 + len - taken.len(), "taken items are gone");
            drop(items);
            assert_eq!(Rc::strong_count(&counted), 1, "every item is dropped once, {len} items");
        }
    }

    #[test]
    fn an_item_is_taken_once() {
        let mut items = TakeOnce::new(vec![String::from("a"), String::from("b")]);
        assert_eq!(items.take(1), "b");
        let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| items.take(1)));
        assert!(again.is_err());
        let past_the_end = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| items.take(2)));
        assert!(past_the_end.is_err());
        assert_eq!(items.take(0), "a");
    }
}

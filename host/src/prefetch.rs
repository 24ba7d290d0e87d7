//! Cache prefetch hints for the loops that walk large heaps in an order the
//! hardware cannot predict (targets by identity, discovered label sets).
//! A hint retires at once, so a loop can have many cache misses in flight
//! instead of waiting for one at a time.

/// Starts loading the cache line holding `*item`.
#[inline(always)]
pub fn prefetch<T: ?Sized>(item: &T) {
    prefetch_address((item as *const T).cast());
}

/// Starts loading every cache line `*item` spans (its first and its last
/// byte: items here are at most a line or two).
#[inline(always)]
pub fn prefetch_spanned<T>(item: &T) {
    let first: *const u8 = (item as *const T).cast();
    prefetch_address(first);
    prefetch_address(first.wrapping_add(std::mem::size_of::<T>().saturating_sub(1)));
}

#[inline(always)]
fn prefetch_address(address: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch only hints the cache: it never faults and changes no
    // memory, whatever the address (here always within a valid reference).
    // SSE is part of the x86_64 baseline.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(address.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}

/// Starts loading the cache lines of `items`, up to `max_lines` of them.
#[inline]
pub fn prefetch_lines<T>(items: &[T], max_lines: usize) {
    let start: *const u8 = items.as_ptr().cast();
    for offset in (0..std::mem::size_of_val(items)).step_by(CACHE_LINE).take(max_lines) {
        prefetch_address(start.wrapping_add(offset));
    }
}

const CACHE_LINE: usize = 64;

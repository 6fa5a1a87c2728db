//! The heap a part of the harness holds: bytes allocated while a thread worked for that part
//! and not freed yet, counted by an allocator wrapper that the `heap-by-part` build installs
//! (`oc-harness`'s feature; `scripts/bench-checker-memory.sh`). Without that feature nothing is counted and marking a
//! thread costs a thread-local write.
//!
//! Each allocation carries its part in a header in front of it, so that a block is credited
//! back to the part that made it wherever it is freed: an exchange made on Teams' thread and
//! dropped by the checker counts as [`Part::Other`]'s all along. The figure is what a part made
//! and still holds; blocks another part made and handed over are not in it.

pub mod settings;

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, Ordering};

/// A part of the harness whose heap is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Part {
    /// Everything not marked.
    Other = 0,
    /// The checker: its actor's thread, and the end-of-run judgement while it folds the calls.
    Checker = 1,
}

const PARTS: usize = 2;

thread_local! {
    static CURRENT: Cell<u8> = const { Cell::new(Part::Other as u8) };
}

static LIVE: [AtomicI64; PARTS] = [const { AtomicI64::new(0) }; PARTS];
static PEAK: [AtomicI64; PARTS] = [const { AtomicI64::new(0) }; PARTS];

/// Marks what the current thread allocates as `part`'s until the guard drops.
#[must_use = "the thread is marked only while the guard lives"]
pub fn enter(part: Part) -> PartGuard {
    let before = CURRENT.with(|c| c.replace(part as u8));
    PartGuard { before }
}

/// Restores the thread's previous part when dropped (see [`enter`]).
#[derive(Debug)]
pub struct PartGuard {
    before: u8,
}

impl Drop for PartGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.before));
    }
}

/// Marks the current thread as `part`'s for as long as it runs (an actor's own thread).
pub fn mark_thread(part: Part) {
    CURRENT.with(|c| c.set(part as u8));
}

/// Bytes `part` holds now and the most it held, when the `heap-by-part` allocator counts;
/// `(0, 0)` otherwise.
pub fn held(part: Part) -> (i64, i64) {
    let i = part as usize;
    (
        LIVE[i].load(Ordering::Relaxed),
        PEAK[i].load(Ordering::Relaxed),
    )
}

/// An allocator that counts, per [`Part`], the bytes allocated and not yet freed, and passes
/// every request on to `A` with a header of 16 bytes (or the alignment, if larger) in front.
#[derive(Debug, Default)]
pub struct CountingAllocator<A>(pub A);

fn header(layout: Layout) -> usize {
    layout.align().max(16)
}

fn widened(layout: Layout) -> Option<Layout> {
    Layout::from_size_align(layout.size().checked_add(header(layout))?, layout.align()).ok()
}

fn count(part: u8, bytes: i64) {
    let i = usize::from(part).min(PARTS - 1);
    let now = LIVE[i].fetch_add(bytes, Ordering::Relaxed) + bytes;
    if bytes > 0 {
        PEAK[i].fetch_max(now, Ordering::Relaxed);
    }
}

/// The part a new block is credited to (a thread being torn down counts as "other").
fn current() -> u8 {
    CURRENT.try_with(Cell::get).unwrap_or(Part::Other as u8)
}

/// A block for `layout`: `get` allocates it widened by the header, which gets the current
/// part; null when `get` fails.
///
/// # Safety
///
/// `get` returns null or a block valid for the layout it is given.
#[expect(
    unsafe_code,
    reason = "the header is written in front of the block handed out"
)]
unsafe fn tagged(layout: Layout, get: impl FnOnce(Layout) -> *mut u8) -> *mut u8 {
    let Some(wide) = widened(layout) else {
        return std::ptr::null_mut();
    };
    let base = get(wide);
    if base.is_null() {
        return base;
    }
    let part = current();
    // SAFETY: the block is `header + size` bytes long, so `base + header` is inside it (or its
    // end, for a zero size) and the byte before it is the header's last.
    unsafe {
        let user = base.add(header(layout));
        user.sub(1).write(part);
        count(part, layout.size() as i64);
        user
    }
}

// SAFETY: every block handed out is `A`'s block moved forward by `header(layout)` bytes, which
// keeps `layout`'s alignment (the header is a multiple of it) and leaves room for the part byte
// just before it; every block taken back is moved back by the same amount, with the same
// widened layout it was allocated with.
#[expect(unsafe_code, reason = "a GlobalAlloc cannot be implemented without it")]
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAllocator<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: `A::alloc` returns null or a block for `wide`, whose size is not zero (it
        // holds the header).
        unsafe { tagged(layout, |wide| self.0.alloc(wide)) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe { tagged(layout, |wide| self.0.alloc_zeroed(wide)) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with this layout, so the header is in front of it
        // and the widened layout was valid then.
        unsafe {
            let part = ptr.sub(1).read();
            count(part, -(layout.size() as i64));
            let wide =
                Layout::from_size_align_unchecked(layout.size() + header(layout), layout.align());
            self.0.dealloc(ptr.sub(header(layout)), wide);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let head = header(layout);
        let Some(new_wide) = new_size.checked_add(head) else {
            return std::ptr::null_mut();
        };
        // SAFETY: as in `dealloc`; `A::realloc` keeps the header's bytes, the block's part.
        unsafe {
            let part = ptr.sub(1).read();
            let wide = Layout::from_size_align_unchecked(layout.size() + head, layout.align());
            let base = self.0.realloc(ptr.sub(head), wide, new_wide);
            if base.is_null() {
                return base;
            }
            count(part, new_size as i64 - layout.size() as i64);
            base.add(head)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;

    /// A private allocator instance (not the global one), so the test sees only its own blocks.
    #[test]
    #[expect(
        unsafe_code,
        reason = "the allocator is called as the global one would be"
    )]
    fn blocks_count_for_the_part_that_made_them_wherever_they_are_freed() {
        let alloc = CountingAllocator(System);
        let (before, _) = held(Part::Checker);
        let layout = Layout::from_size_align(100, 8).unwrap();
        let wide = Layout::from_size_align(4096, 64).unwrap();
        // SAFETY: blocks are used only through the allocator they came from, with their layouts.
        unsafe {
            let guard = enter(Part::Checker);
            let a = alloc.alloc(layout);
            let b = alloc.alloc_zeroed(wide);
            assert_eq!(b as usize % 64, 0, "the alignment asked for is kept");
            assert!(std::slice::from_raw_parts(b, 4096).iter().all(|&x| x == 0));
            drop(guard);
            assert_eq!(held(Part::Checker).0 - before, 100 + 4096);
            // Grown on another part's watch: still the checker's.
            a.write_bytes(7, 100);
            let a = alloc.realloc(a, layout, 300);
            assert_eq!(*a.add(99), 7, "realloc keeps the contents");
            assert_eq!(held(Part::Checker).0 - before, 300 + 4096);
            let b = b as usize;
            std::thread::scope(|s| {
                s.spawn(|| alloc.dealloc(b as *mut u8, wide));
            });
            assert_eq!(held(Part::Checker).0 - before, 300);
            alloc.dealloc(a, Layout::from_size_align(300, 8).unwrap());
        }
        assert_eq!(held(Part::Checker).0, before);
        assert!(held(Part::Checker).1 >= 300 + 4096);
    }
}

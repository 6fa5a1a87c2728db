//! mimalloc's settings that a command changes for itself, before it starts its threads.

use std::ffi::{c_int, c_long};

/// mimalloc's `mi_option_purge_delay`: how long freed memory waits before it is handed back
/// to the kernel, ms; -1 for never (mimalloc's `mimalloc.h`, the same place in versions 2
/// and 3, so `libmimalloc-sys` exports no name for it).
const PURGE_DELAY: c_int = 15;

/// Keeps the memory the program frees for its own reuse instead of handing it back to the
/// kernel after mimalloc's delay (1 s in version 3, which the harness links): for a command that frees and allocates large buffers in
/// turn and ends soon (`oc-harness reconcile`), where each hand-back meant faulting the same
/// memory in again, cleared, when it was reused. Its resident size is then its peak's.
///
/// Call it before the command starts threads: mimalloc's options are not made to be changed
/// while other threads allocate.
pub fn keep_freed_memory() {
    #[expect(unsafe_code, reason = "mimalloc's options are set through its C API")]
    // SAFETY: `mi_option_set` writes one option's value; its index is within mimalloc's
    // option table (`_mi_option_last` is 47 in version 3, 38 in version 2). The caller runs
    // before its threads, so no other thread reads the option as it changes.
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, -1);
    }
}

/// mimalloc's current purge delay (ms; -1: never).
pub fn purge_delay() -> c_long {
    #[expect(unsafe_code, reason = "mimalloc's options are read through its C API")]
    // SAFETY: `mi_option_get` reads one option's value, its index within the table.
    unsafe {
        libmimalloc_sys::mi_option_get(PURGE_DELAY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_set_is_the_purge_delay() {
        // mimalloc's default purge delay: 1,000 ms in version 3, 10 in version 2. The options
        // beside it are booleans or 0 by default: an index one off would read one of those.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert!(matches!(purge_delay(), 1000 | 10), "{}", purge_delay());
        }
        keep_freed_memory();
        assert_eq!(purge_delay(), -1);
    }
}

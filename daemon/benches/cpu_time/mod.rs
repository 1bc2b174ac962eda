//! Time on a core rather than wall-clock time, for benches run on a machine shared with other
//! work: with every core busy, a thread waits for its turn, and the wall clock counts that
//! wait. [`on_core`] times `iters` runs of `f` by the calling thread's CPU clock
//! (`CLOCK_THREAD_CPUTIME_ID`, read once before and once after the sample). Work the code
//! hands to other threads is not counted.

use std::time::Duration;

#[allow(unsafe_code)] // clock_gettime has no safe wrapper among the crate's dependencies
fn thread_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a pointer to a live timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Time this thread spent on a core while running `f` `iters` times (for `iter_custom`).
pub fn on_core<T>(iters: u64, mut f: impl FnMut() -> T) -> Duration {
    let start = thread_cpu();
    for _ in 0..iters {
        std::hint::black_box(f());
    }
    thread_cpu().saturating_sub(start)
}

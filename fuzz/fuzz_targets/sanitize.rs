//! The sanitizer under coverage-guided fuzzing: any input within the 100 KB
//! limit, as HTML (first byte even) or Markdown (odd), must not panic, must
//! not render past its bound, and must not take more CPU time than 50 ms
//! would be in a plain release build (the least of three tries). Coverage instrumentation makes the code about 7-8x
//! slower (measured: 100 KB of forum HTML 45 ms here vs 5.9 ms, the
//! slowest accepted corpus shape 314 vs 47 ms), so the bound here is
//! `FUZZ_SLOWEST_MS`, 400 unless set. Allocation is bounded by libFuzzer's
//! `-malloc_limit_mb=64` (see README.md here). HTML the guard accepts must
//! come out exactly as ammonia alone cleans it: the guard watches the parse,
//! it must not change the tree.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use veritable_core::sanitize::{html_limit, render_markdown, sanitize_html, unguarded};

const LIMIT: usize = 100_000;

/// CPU time of this thread: unlike the wall clock it does not grow when
/// other processes take the cores (a run beside a build reported 737 ms for
/// an input that takes 5 ms).
fn cpu_time() -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    Duration::new(u64::try_from(now.tv_sec).unwrap_or(0), u32::try_from(now.tv_nsec).unwrap_or(0))
}

fn slowest() -> Duration {
    let ms = std::env::var("FUZZ_SLOWEST_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(400);
    Duration::from_millis(ms)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let run = || {
        let started = cpu_time();
        let out = if mode % 2 == 0 { sanitize_html(&text, LIMIT) } else { render_markdown(&text, LIMIT) };
        (cpu_time().saturating_sub(started), out)
    };
    let (took, out) = run();
    if let Ok(html) = &out {
        assert!(html.len() <= html_limit(LIMIT), "rendered {} bytes from {}", html.len(), text.len());
        if mode % 2 == 0 {
            assert_eq!(*html, unguarded(&text), "the guarded parse changed the tree");
        }
    }
    let slowest = slowest();
    if took > slowest {
        let fastest = (0..2).map(|_| run().0).min().unwrap_or(took).min(took);
        assert!(fastest <= slowest, "{} bytes took {fastest:?} at best", text.len());
    }
});

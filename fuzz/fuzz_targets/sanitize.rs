//! The sanitizer under coverage-guided fuzzing: any input within the 100 KB
//! limit, as HTML (first byte even) or Markdown (odd), must not panic, must
//! not render past its bound, and must not take more than 50 ms (the
//! slowest of three tries, so a busy machine is not a finding). Allocation
//! is bounded by libFuzzer's `-malloc_limit_mb=64` (see README.md here).
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use veritable_core::sanitize::{html_limit, render_markdown, sanitize_html};

const LIMIT: usize = 100_000;
const SLOWEST: Duration = Duration::from_millis(50);

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let run = || {
        let started = Instant::now();
        let out = if mode % 2 == 0 { sanitize_html(&text, LIMIT) } else { render_markdown(&text, LIMIT) };
        (started.elapsed(), out)
    };
    let (took, out) = run();
    if let Ok(html) = &out {
        assert!(html.len() <= html_limit(LIMIT), "rendered {} bytes from {}", html.len(), text.len());
    }
    if took > SLOWEST {
        let fastest = (0..2).map(|_| run().0).min().unwrap_or(took).min(took);
        assert!(fastest <= SLOWEST, "{} bytes took {fastest:?} at best", text.len());
    }
});

//! The sanitizer on every adversarial shape at the content limit: the time
//! of each call (median and slowest of several), and whether it was refused.
//!
//!     cargo run --release -p veritable-core --example adversarial [-- ROUNDS [SIZE]]
//!
//! `--unguarded` adds a column: one call of the policy alone (ammonia, no
//! guard, Markdown rendered without bounds), i.e. the cost before the guard.
//! `--ab` compares the throughput of ordinary HTML with and without the
//! guard, alternating rounds in one process. `--dump DIR [SIZE]` writes each
//! shape to DIR/NN.html or NN.md (the in-database benchmark and the fuzzer's
//! seed corpus load them from there).
use std::time::Instant;

use veritable_core::sanitize::corpus::{self, Format, Shape};
use veritable_core::sanitize::{render_markdown, sanitize_html, unguarded};

fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

fn main() -> std::io::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--dump") => {
            let size = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100_000);
            return dump(args.get(1).map_or("corpus", String::as_str), size);
        }
        Some("--ab") => {
            ab();
            return Ok(());
        }
        _ => {}
    }
    let with_unguarded = args.iter().any(|a| a == "--unguarded");
    args.retain(|a| a != "--unguarded");
    let rounds: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(7);
    let size: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    print!("{:<32} {:>7} {:>6} {:>9} {:>9}", "shape", "bytes", "format", "median ms", "max ms");
    println!("{}  outcome", if with_unguarded { format!(" {:>13}", "unguarded ms") } else { String::new() });
    let mut slowest = (0.0f64, "");
    for shape in corpus::shapes(size) {
        let mut times = Vec::with_capacity(rounds);
        let mut outcome = String::new();
        for _ in 0..rounds {
            let start = Instant::now();
            let result = match shape.format {
                Format::Html => sanitize_html(&shape.text, size),
                Format::Markdown => render_markdown(&shape.text, size),
            };
            times.push(ms(start));
            outcome = match result {
                Ok(html) => format!("ok, {} bytes out", html.len()),
                Err(e) => format!("refused: {e}"),
            };
        }
        times.sort_by(f64::total_cmp);
        let (median, max) = (times[times.len() / 2], times[times.len() - 1]);
        if max > slowest.0 {
            slowest = (max, shape.name);
        }
        let format = if shape.format == Format::Html { "html" } else { "md" };
        print!("{:<32} {:>7} {:>6} {:>9.2} {:>9.2}", shape.name, shape.text.len(), format, median, max);
        if with_unguarded {
            print!(" {:>13.2}", unguarded_ms(&shape));
        }
        println!("  {outcome}");
    }
    println!("slowest call: {:.2} ms ({})", slowest.0, slowest.1);
    Ok(())
}

/// One call as the sanitizer worked before the guard.
fn unguarded_ms(shape: &Shape) -> f64 {
    let start = Instant::now();
    let html = match shape.format {
        Format::Html => shape.text.clone(),
        Format::Markdown => {
            let mut html = String::new();
            pulldown_cmark::html::push_html(
                &mut html,
                pulldown_cmark::Parser::new_ext(&shape.text, pulldown_cmark::Options::ENABLE_STRIKETHROUGH),
            );
            html
        }
    };
    std::hint::black_box(unguarded(&html));
    ms(start)
}

/// Ordinary HTML with and without the guard, 7 alternating rounds: medians.
fn ab() {
    let forum = corpus::FORUM_UNIT.repeat(16);
    let reply = "<p>Thanks, that fixed it. The <code>LISTEN</code> connection was going through pgbouncer; \
                 with a direct URL it works.</p>\n<p>See <a href=\"https://example.test/docs\">the docs</a>.</p>\n";
    for (name, doc, calls) in [("forum HTML (tag-dense)", forum.as_str(), 400), ("typical reply", reply, 40_000)] {
        let (mut before, mut after) = (Vec::new(), Vec::new());
        for _ in 0..7 {
            let start = Instant::now();
            for _ in 0..calls {
                std::hint::black_box(unguarded(doc));
            }
            before.push(start.elapsed().as_secs_f64());
            let start = Instant::now();
            for _ in 0..calls {
                std::hint::black_box(sanitize_html(doc, 100_000).map(|h| h.len()).unwrap_or(0));
            }
            after.push(start.elapsed().as_secs_f64());
        }
        before.sort_by(f64::total_cmp);
        after.sort_by(f64::total_cmp);
        let mbs = |seconds: f64| (doc.len() * calls) as f64 / seconds / 1e6;
        println!(
            "{name} ({} bytes): policy alone {:.1} MB/s, guard + policy {:.1} MB/s, ratio {:.2}",
            doc.len(),
            mbs(before[3]),
            mbs(after[3]),
            before[3] / after[3]
        );
    }
}

fn dump(dir: &str, size: usize) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (i, shape) in corpus::shapes(size).iter().enumerate() {
        let ext = if shape.format == Format::Html { "html" } else { "md" };
        std::fs::write(format!("{dir}/{i:02}.{ext}"), &shape.text)?;
        println!("{dir}/{i:02}.{ext}\t{}", shape.name);
    }
    Ok(())
}

//! The sanitizer on every adversarial shape at the content limit: the time
//! of each call (median and slowest of several), and whether it was refused.
//!
//!     cargo run --release -p veritable-core --example adversarial [-- ROUNDS [SIZE]]
//!
//! `--dump DIR` writes each shape to DIR/NN.html or NN.md instead (the
//! in-database benchmark loads them from there).
use std::time::Instant;

use veritable_core::sanitize::corpus::{self, Format};
use veritable_core::sanitize::{render_markdown, sanitize_html};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--dump") {
        let dir = args.get(1).map_or("corpus", String::as_str);
        std::fs::create_dir_all(dir)?;
        for (i, shape) in corpus::shapes(100_000).iter().enumerate() {
            let ext = if shape.format == Format::Html { "html" } else { "md" };
            std::fs::write(format!("{dir}/{i:02}.{ext}"), &shape.text)?;
            println!("{dir}/{i:02}.{ext}\t{}", shape.name);
        }
        return Ok(());
    }
    let rounds: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(7);
    let size: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    println!("{:<32} {:>7} {:>6} {:>9} {:>9}  outcome", "shape", "bytes", "format", "median ms", "max ms");
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
            times.push(start.elapsed().as_secs_f64() * 1e3);
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
        println!("{:<32} {:>7} {:>6} {:>9.2} {:>9.2}  {outcome}", shape.name, shape.text.len(), format, median, max);
    }
    println!("slowest call: {:.2} ms ({})", slowest.0, slowest.1);
    Ok(())
}

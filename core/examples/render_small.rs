use std::time::Instant;
use veritable_core::sanitize;
fn main() {
    let body = "A reply of ordinary length, with *some* emphasis and a [link](https://example.test/x). It says something about postgres and its indexes, then asks a question about latency?";
    let n = 20000;
    let t = Instant::now();
    let mut total = 0;
    for _ in 0..n { total += sanitize::render_markdown(body, 100000).map(|h| h.len()).unwrap_or(0); }
    let render = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let html = sanitize::render_markdown(body, 100000).unwrap_or_default();
    let t = Instant::now();
    for _ in 0..n { total += sanitize::sanitize_html(&html, 100000).map(|h| h.len()).unwrap_or(0); }
    let clean = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let t = Instant::now();
    for _ in 0..n { total += sanitize::sanitize_html("<p>x</p>", 100000).map(|h| h.len()).unwrap_or(0); }
    let tiny = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("render_markdown {render:.1} µs, sanitize of its html {clean:.1} µs, sanitize <p>x</p> {tiny:.1} µs ({total})\n{html}");
}

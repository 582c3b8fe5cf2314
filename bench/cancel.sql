-- Cancel latency inside the sanitizer: a 2 ms statement_timeout on a 950 KB call,
-- the first and later cancels in one fresh backend (BENCHMARKS.md, Cancellation).
--   psql -X -h 127.0.0.1 -p 54329 -U veritable -d veritable_test -f bench/cancel.sql
SET veritable.max_content_bytes = 1000000;
CREATE TEMP TABLE d AS SELECT repeat('<p>Thanks for the <strong>detailed</strong> write-up! I <a href="https://x.test/a">covering index</a> and it <em>halved</em> our p99.</p>
<ul><li>yes</li><li>no <code>LISTEN</code></li></ul>', 5000) AS html;
\timing on
SET statement_timeout = 2;
SELECT octet_length(veritable.render_markdown(html)) FROM d;
SELECT octet_length(veritable.sanitize_html(html)) FROM d;
SELECT octet_length(veritable.sanitize_html(html)) FROM d;
SELECT octet_length(veritable.render_markdown(html)) FROM d;

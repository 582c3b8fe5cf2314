-- The sanitizer in PostgreSQL on tag-dense forum HTML (the 8.6 KB document of
-- bench/extension.sh), 400 calls in one statement, one backend: MB/s = 400 * 8640 / time.
--   psql -X -A -t -h 127.0.0.1 -p 54329 -U veritable -d veritable_test -f bench/sanitize_throughput.sql
CREATE TEMP TABLE d AS SELECT repeat('<p>Thanks for the <strong>detailed</strong> write-up! I tried the <a href="https://example.test/docs/indexes">covering index</a> approach and it <em>halved</em> our p99.</p>
<blockquote><p>Does this work with <code>pgbouncer</code> in transaction mode?</p></blockquote>
<ul><li>yes, with unnamed statements</li><li>no, if you rely on <code>LISTEN</code></li></ul>
<pre><code>SELECT * FROM veritable.topic_page(NULL, NULL, 20);</code></pre>
<p onclick="steal()">Also: <img src=x onerror=alert(1)> <a href="javascript:alert(1)">click</a></p>
', 16) AS html;
SELECT octet_length(html) FROM d;
SELECT sum(length(veritable.sanitize_html(d.html || g::text))) FROM d, generate_series(1, 20) g;
\timing on
SELECT sum(length(veritable.sanitize_html(d.html || g::text))) FROM d, generate_series(1, 400) g;
SELECT sum(length(veritable.sanitize_html(d.html || g::text))) FROM d, generate_series(1, 400) g;
SELECT sum(length(veritable.sanitize_html(d.html || g::text))) FROM d, generate_series(1, 400) g;

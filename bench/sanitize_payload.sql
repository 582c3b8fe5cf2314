SELECT veritable.sanitize_html(html) FROM bench_docs WHERE name = 'payload';

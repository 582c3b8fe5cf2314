SELECT length(veritable.sanitize_html(html)) FROM bench_docs WHERE name = 'forum';

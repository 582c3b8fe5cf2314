//! Adversarial inputs at a given size: the shapes that made parsers do
//! superlinear work, for the unit tests, the benchmark
//! (`cargo run --release -p veritable-core --example adversarial`) and the
//! fuzz target's seed corpus. Each is built by repeating a unit until the
//! input reaches `size` bytes.

/// How an input is meant to be rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Html,
    Markdown,
}

#[derive(Debug, Clone)]
pub struct Shape {
    pub name: &'static str,
    pub format: Format,
    pub text: String,
}

fn repeat_to(size: usize, prefix: &str, unit: &dyn Fn(usize) -> String) -> String {
    let mut text = String::from(prefix);
    let mut i = 0;
    loop {
        let next = unit(i);
        if text.len() + next.len() > size {
            return text;
        }
        text.push_str(&next);
        i += 1;
    }
}

/// Every shape, `size` bytes or just under.
#[must_use]
pub fn shapes(size: usize) -> Vec<Shape> {
    use Format::{Html, Markdown};
    let fixed = |unit: &'static str| move |_| unit.to_owned();
    let mut all: Vec<(&'static str, Format, String)> = vec![
        // Nesting, plain and hidden from a byte scanner.
        ("nested div", Html, repeat_to(size, "", &fixed("<div>"))),
        ("nested ul/li", Html, repeat_to(size, "", &fixed("<ul><li>"))),
        ("nested blockquote", Html, repeat_to(size, "", &fixed("<blockquote>"))),
        ("nested table cells", Html, repeat_to(size, "", &fixed("<table><tr><td>"))),
        ("nested svg", Html, repeat_to(size, "", &fixed("<svg><g>"))),
        ("nested template", Html, repeat_to(size, "", &fixed("<template>"))),
        ("nested select/option", Html, repeat_to(size, "<select>", &fixed("<optgroup><option>"))),
        ("abrupt comment <!-->", Html, repeat_to(size, "", &fixed("<!--><div>"))),
        ("abrupt comment <!--->", Html, repeat_to(size, "", &fixed("<!---><div>"))),
        ("comment ended by --!>", Html, repeat_to(size, "", &fixed("<!-- x --!><div>"))),
        ("bogus comments", Html, repeat_to(size, "", &fixed("<?x><div><!x></ x><div>"))),
        ("stray end tags", Html, repeat_to(size, "", &fixed("<div></span>"))),
        ("end tags with attributes", Html, repeat_to(size, "", &fixed("<div></p a=\">\">"))),
        ("unclosed attribute quotes", Html, repeat_to(size, "<p title=\"", &fixed("<div> "))),
        ("raw text closers", Html, repeat_to(size, "", &fixed("<textarea></div></textarea><div>"))),
        ("misnested formatting", Html, repeat_to(size, "", &fixed("<b><p></b>"))),
        ("adoption agency a/div", Html, repeat_to(size, "", &fixed("<a><div><a>"))),
        ("formatting reconstruction", Html, repeat_to(size, "", &|i| format!("<p><b x={i}></p>"))),
        ("wide reconstruction", Html, {
            let open: String = (0..250).map(|i| format!("<b id={i}>")).collect();
            repeat_to(size, &open, &fixed("<p>x</p>"))
        }),
        ("foster parenting flood", Html, repeat_to(size, "<table>", &fixed("<b></b>"))),
        ("foster text flood", Html, repeat_to(size, "<table>", &fixed("x<i>"))),
        ("one tag, distinct attributes", Html, repeat_to(size, "<b ", &|i| format!("a{i:x} "))),
        ("one tag, duplicate attributes", Html, repeat_to(size, "<b ", &fixed("a "))),
        (
            "many tags of 1,000 attributes",
            Html,
            repeat_to(size, "", &|i| {
                if i % 1000 == 999 { ">\n<b ".to_owned() } else { format!("a{i:x} ") }
            }),
        ),
        ("repeated <html>, new attributes", Html, repeat_to(size, "", &|i| format!("<html a{i:x}>"))),
        ("javascript: urls", Html, repeat_to(size, "", &fixed("<a href=\"java&#x09;script:alert(1)\">x</a>"))),
        (
            "the seed's payload",
            Html,
            format!("<script>{}{}</script>", "(".repeat(size / 2 - 9), ")".repeat(size / 2 - 9)),
        ),
        // Markdown: its own nesting, and output much larger than its input.
        ("md nested lists", Markdown, repeat_to(size, "", &fixed("- "))),
        ("md nested quotes", Markdown, repeat_to(size, "", &fixed("> "))),
        ("md quotes and lists", Markdown, repeat_to(size, "", &fixed("> - "))),
        ("md nested emphasis", Markdown, repeat_to(size, "", &fixed("*a **b "))),
        ("md unclosed emphasis", Markdown, repeat_to(size, "", &fixed("*_"))),
        ("md nested links", Markdown, repeat_to(size, "", &fixed("[a"))),
        ("md link brackets", Markdown, repeat_to(size, "", &fixed("[]("))),
        ("md backticks", Markdown, repeat_to(size, "", &|i| "`".repeat(i % 50 + 1) + " a ")),
        ("md reference amplification", Markdown, {
            let definition = format!("[r]: https://x.test/{}\n\n", "a".repeat(1000));
            repeat_to(size, &definition, &fixed("[r] "))
        }),
        ("md entity expansion", Markdown, repeat_to(size, "", &fixed("&"))),
        ("md html comment trick", Markdown, repeat_to(size, "", &fixed("<!--><div>\n"))),
        ("md raw html nesting", Markdown, repeat_to(size, "", &fixed("<div>"))),
        ("md stray closers", Markdown, repeat_to(size, "", &fixed("<div></span>"))),
        ("md link javascript", Markdown, repeat_to(size, "", &fixed("[x](javascript:alert(1)) "))),
    ];
    all.push(("forum post", Html, repeat_to(size, "", &fixed(FORUM_UNIT))));
    all.into_iter().map(|(name, format, text)| Shape { name, format, text }).collect()
}

/// The benchmark's honest forum HTML (tags, links, code, an XSS attempt).
pub const FORUM_UNIT: &str = "<p>Thanks for the <strong>detailed</strong> write-up! I tried the \
<a href=\"https://example.test/docs/indexes\">covering index</a> approach and it <em>halved</em> our p99.</p>\n\
<blockquote><p>Does this work with <code>pgbouncer</code> in transaction mode?</p></blockquote>\n\
<ul><li>yes, with unnamed statements</li><li>no, if you rely on <code>LISTEN</code></li></ul>\n\
<pre><code>SELECT * FROM veritable.topic_page(NULL, NULL, 20);</code></pre>\n\
<p onclick=\"steal()\">Also: <img src=x onerror=alert(1)> <a href=\"javascript:alert(1)\">click</a></p>\n";

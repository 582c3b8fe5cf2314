//! HTML sanitizing (ammonia: html5ever, linear time, no regexes) and
//! Markdown rendering (pulldown-cmark) through the same sanitizer.
//!
//! The policy is the seed report's allowlist plus what a forum and a wiki
//! need (headings, rules, strike-through). Raw HTML inside Markdown is
//! sanitized like any other HTML, never trusted.

use std::collections::HashSet;
use std::sync::LazyLock;

pub mod corpus;
pub mod guard;

use ammonia::{Builder, UrlRelative};
pub use guard::Shape;
use pulldown_cmark::{Options, Parser};

/// Bumped whenever the policy below changes, so stored HTML rendered under an
/// older policy can be found (`render_version < POLICY_VERSION`) and re-rendered.
pub const POLICY_VERSION: i32 = 1;

/// The seed report's allowlist.
const BASE_TAGS: &[&str] = &["p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li", "a"];
/// Added for forum and wiki Markdown: headings, horizontal rules, strike-through.
const FORUM_TAGS: &[&str] = &["h1", "h2", "h3", "h4", "h5", "h6", "hr", "del"];
/// Dropped together with their content (not just their tags).
const CONTENT_DROPPED: &[&str] =
    &["script", "style", "template", "noscript", "iframe", "object", "embed", "svg", "math"];

pub const LINK_REL: &str = "nofollow ugc noopener";

static POLICY: LazyLock<Builder<'static>> = LazyLock::new(|| {
    let mut builder = Builder::empty();
    builder
        .tags(BASE_TAGS.iter().chain(FORUM_TAGS).copied().collect::<HashSet<_>>())
        .clean_content_tags(CONTENT_DROPPED.iter().copied().collect::<HashSet<_>>())
        .add_tag_attributes("a", &["href"])
        .url_schemes(["http", "https", "mailto"].into_iter().collect::<HashSet<_>>())
        .url_relative(UrlRelative::PassThrough)
        .link_rel(Some(LINK_REL))
        .strip_comments(true);
    builder
});

/// Input longer than the configured limit: refused, never truncated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("content is {actual} bytes, over the limit of {limit} bytes (veritable.max_content_bytes)")]
pub struct TooLarge {
    pub actual: usize,
    pub limit: usize,
}

/// Deeper element nesting than any real post needs. html5ever's tree builder
/// does work proportional to its stack of open elements for each token, so
/// unbounded nesting is quadratic (measured: 8,000 nested `<ul><li>` took
/// 0.64 s). Browsers cap the DOM depth at 512. The depth is counted on the
/// tree html5ever itself builds ([`guard`]), not on a reading of the syntax.
pub const MAX_NESTING: usize = 256;

/// Rendered HTML may be at most this many times the input limit. Escaping
/// (`&` becomes `&amp;`) and links (`[a](b)` gains `href` and `rel`) grow
/// honest text by up to about 8×; more than that is amplification, such as
/// one long reference link used thousands of times.
pub const HTML_FACTOR: usize = 8;

/// The largest HTML that a `limit`-byte input may render to.
#[must_use]
pub fn html_limit(limit: usize) -> usize {
    limit.saturating_mul(HTML_FACTOR)
}

#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
#[error("content nests elements more than {limit} levels deep")]
pub struct TooDeep {
    pub limit: usize,
}

/// The parser would do more work than the input's length allows (markup
/// crafted to make it re-open or re-insert elements over and over).
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
#[error("content is too complex to render (its markup needs more than {budget} parser steps)")]
pub struct TooComplex {
    pub budget: usize,
}

/// One tag, comment or declaration longer than the parser may read without
/// building anything (see [`guard::MAX_SILENT_BYTES`]).
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
#[error("content has a tag or comment longer than about {limit} bytes")]
pub struct TokenTooLong {
    pub limit: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SanitizeError {
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    #[error(transparent)]
    TooDeep(#[from] TooDeep),
    #[error(transparent)]
    TooComplex(#[from] TooComplex),
    #[error(transparent)]
    TokenTooLong(#[from] TokenTooLong),
    #[error("content renders to more than {limit} bytes of HTML")]
    RendersTooLarge { limit: usize },
    #[error("content has more than {limit} character references or escaped characters (&, <, >, \")")]
    TooManyReferences { limit: usize },
}

impl From<guard::Refusal> for SanitizeError {
    fn from(refusal: guard::Refusal) -> Self {
        match refusal {
            guard::Refusal::TooDeep(e) => e.into(),
            guard::Refusal::TooComplex(e) => e.into(),
            guard::Refusal::TokenTooLong(e) => e.into(),
        }
    }
}

pub fn check_size(input: &str, limit: usize) -> Result<(), TooLarge> {
    if input.len() > limit {
        return Err(TooLarge { actual: input.len(), limit });
    }
    Ok(())
}

/// Sanitized HTML under [`POLICY_VERSION`]; `limit` bounds the input bytes.
pub fn sanitize_html(html: &str, limit: usize) -> Result<String, SanitizeError> {
    sanitize_html_with(html, limit, &mut || {})
}

/// [`sanitize_html`], calling `tick` at least every [`guard::CHUNK`] bytes
/// of parsing (the extension checks for query cancellation there).
pub fn sanitize_html_with(html: &str, limit: usize, tick: &mut dyn FnMut()) -> Result<String, SanitizeError> {
    check_size(html, limit)?;
    clean(html, limit, tick)
}

/// Character references (`&amp;`, `&#38;`) allowed per byte of the input
/// limit: one in [`REF_SPACING`] bytes. html5ever decodes a named reference
/// in about a microsecond, twenty times the cost of a plain character, and
/// Markdown turns every `&`, `<`, `>` and `"` into one (100 KB of `&` took
/// 165 ms). Code-heavy posts use one in thirty bytes or fewer.
pub const REF_SPACING: usize = 5;

fn clean(html: &str, limit: usize, tick: &mut dyn FnMut()) -> Result<String, SanitizeError> {
    let out_limit = html_limit(limit);
    let refs = html.bytes().filter(|&b| b == b'&').count();
    let max_refs = limit / REF_SPACING + guard::CHUNK;
    if refs > max_refs {
        return Err(SanitizeError::TooManyReferences { limit: max_refs });
    }
    let (dom, _) = guard::parse(html, tick)?;
    let out = POLICY.clean_dom(dom).to_string();
    tick();
    if out.len() > out_limit {
        return Err(SanitizeError::RendersTooLarge { limit: out_limit });
    }
    Ok(out)
}

/// The policy alone, without the size limit and the cost bounds: what
/// `sanitize_html` did before the guard. For benchmarks that measure what
/// the guard costs and saves (`examples/adversarial.rs`); never for input
/// from users.
#[doc(hidden)]
#[must_use]
pub fn unguarded(html: &str) -> String {
    POLICY.clean(html).to_string()
}

/// Markdown (CommonMark + strike-through) rendered, then sanitized; `limit`
/// bounds the Markdown bytes.
pub fn render_markdown(markdown: &str, limit: usize) -> Result<String, SanitizeError> {
    render_markdown_with(markdown, limit, &mut || {})
}

/// Markdown events between calls of `tick` while rendering.
const EVENTS_PER_TICK: usize = 1024;

/// [`render_markdown`] with a `tick` as in [`sanitize_html_with`].
/// pulldown-cmark's HTML is written into a buffer that refuses to grow past
/// [`html_limit`], then guarded and sanitized like any other HTML.
pub fn render_markdown_with(markdown: &str, limit: usize, tick: &mut dyn FnMut()) -> Result<String, SanitizeError> {
    check_size(markdown, limit)?;
    let out_limit = html_limit(limit);
    let mut events = 0usize;
    let parser = Parser::new_ext(markdown, Options::ENABLE_STRIKETHROUGH).inspect(|_| {
        events += 1;
        if events.is_multiple_of(EVENTS_PER_TICK) {
            tick();
        }
    });
    let mut html = Bounded { text: String::with_capacity(markdown.len() + markdown.len() / 4), limit: out_limit };
    pulldown_cmark::html::write_html_fmt(&mut html, parser)
        .map_err(|_| SanitizeError::RendersTooLarge { limit: out_limit })?;
    clean(&html.text, limit, tick)
}

/// A `fmt::Write` that fails instead of growing past `limit` bytes.
struct Bounded {
    text: String,
    limit: usize,
}

impl std::fmt::Write for Bounded {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.text.len() + s.len() > self.limit {
            return Err(std::fmt::Error);
        }
        self.text.push_str(s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 100_000;

    fn sanitize(html: &str) -> String {
        sanitize_html(html, LIMIT).expect("sanitizes")
    }

    fn markdown(md: &str) -> String {
        render_markdown(md, LIMIT).expect("renders")
    }

    #[test]
    fn keeps_the_allowlist_and_forces_rel() {
        let out =
            sanitize(r#"<p><strong>b</strong> <a href="https://x.test/a" target="_blank" onclick="x()">l</a></p>"#);
        assert_eq!(out, r#"<p><strong>b</strong> <a href="https://x.test/a" rel="nofollow ugc noopener">l</a></p>"#);
    }

    #[test]
    fn drops_scripts_with_their_content() {
        let payload = format!("<script>{}{}</script>", "(".repeat(500), ")".repeat(500));
        assert_eq!(sanitize(&payload), "");
        assert_eq!(sanitize("a<script>alert(1)</script>b"), "ab");
    }

    #[test]
    fn refuses_dangerous_urls() {
        for href in [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "data:text/html;base64,PHNjcmlwdD4=",
            "&#106;avascript:alert(1)",
            "java&#x09;script:alert(1)",
            "vbscript:msgbox(1)",
        ] {
            let out = sanitize(&format!(r#"<a href="{href}">x</a>"#));
            assert!(!out.contains("href"), "{href} -> {out}");
        }
        let relative = sanitize(r#"<a href="/t/42">x</a>"#);
        assert!(relative.contains(r#"href="/t/42""#), "{relative}");
        let mail = sanitize(r#"<a href="mailto:a@b.test">x</a>"#);
        assert!(mail.contains("mailto:a@b.test"), "{mail}");
    }

    #[test]
    fn neutralizes_attribute_injection_and_mutation_xss_shapes() {
        let cases = [
            r#"<p onmouseover="alert(1)">x</p>"#,
            r#"<a href="https://x.test" " onclick="alert(1)">x</a>"#,
            r#"<img src=x onerror=alert(1)>"#,
            r#"<svg><p><style><img src=x onerror=alert(1)></style></p></svg>"#,
            r#"<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>"#,
            r#"<noscript><p title="</noscript><img src=x onerror=alert(1)>">"#,
            r#"<template><img src=x onerror=alert(1)></template>"#,
            r#"<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert(1)>"#,
        ];
        for case in cases {
            let out = sanitize(case);
            let lower = out.to_lowercase();
            assert!(
                !lower.contains("onerror") && !lower.contains("onclick") && !lower.contains("onmouseover"),
                "{case} -> {out}"
            );
            assert!(!lower.contains("<img") && !lower.contains("<svg") && !lower.contains("<math"), "{case} -> {out}");
            // Sanitizing is idempotent: the output parses to itself.
            assert_eq!(sanitize(&out), out, "{case}");
            assert_only_safe_attributes(case, &out);
        }
    }

    #[test]
    fn keeps_unicode_intact() {
        let text = "<p>שלום مرحبا 👩‍👩‍👧 e\u{301} \u{202e}abc</p>";
        assert_eq!(sanitize(text), text);
    }

    #[test]
    fn refuses_deep_nesting_quickly_and_allows_the_bound() {
        // The fragment's root element is level 1, so 255 divs reach the bound.
        let divs = |depth: usize| format!("{}x{}", "<div>".repeat(depth), "</div>".repeat(depth));
        assert!(sanitize(&divs(MAX_NESTING - 1)).contains('x'));
        assert_eq!(
            sanitize_html(&divs(MAX_NESTING), LIMIT),
            Err(SanitizeError::TooDeep(TooDeep { limit: MAX_NESTING }))
        );
        let nested_lists = |depth: usize| format!("{}x{}", "<ul><li>".repeat(depth), "</li></ul>".repeat(depth));
        assert!(sanitize(&nested_lists(MAX_NESTING / 2 - 1)).contains('x'));
        assert_eq!(
            sanitize_html(&nested_lists(10_000), 1_000_000),
            Err(SanitizeError::TooDeep(TooDeep { limit: MAX_NESTING }))
        );
        let quotes = format!("{}x", "> ".repeat(10_000));
        assert!(matches!(
            render_markdown(&quotes, LIMIT),
            Err(SanitizeError::TooDeep(_) | SanitizeError::RendersTooLarge { .. })
        ));
        let lists = format!("{}x", "- ".repeat(10_000));
        assert!(matches!(render_markdown(&lists, LIMIT), Ok(_) | Err(SanitizeError::TooDeep(_))));
        let lists = format!("{}x", "  - ".repeat(1_000));
        assert!(matches!(render_markdown(&lists, LIMIT), Err(SanitizeError::TooDeep(_)) | Ok(_)));
        // Sloppy but shallow markup is not "deep".
        let paragraphs = "a<p>".repeat(5_000);
        assert!(sanitize_html(&paragraphs, LIMIT).is_ok());
        let breaks = "<br>".repeat(5_000) + &"<img src=x>".repeat(1_000) + &"<br/>".repeat(1_000);
        assert!(sanitize_html(&breaks, LIMIT).is_ok());
        // HTML ignores the slash of a non-void element: `<b/>` opens a `b`.
        assert!(matches!(sanitize_html(&"<b/>".repeat(1_000), LIMIT), Err(SanitizeError::TooDeep(_))));
        // Many shallow nests in a row are fine: the bound is on depth, not count.
        let many = nested_lists(10).repeat(200);
        assert!(sanitize_html(&many, LIMIT).is_ok());
        // Each node costs its depth (the parser's work grows with its stack),
        // so deep nests repeated are too much work, though none is too deep.
        let deep_many = nested_lists(100).repeat(20);
        assert!(matches!(sanitize_html(&deep_many, LIMIT), Err(SanitizeError::TooComplex(_))));
    }

    #[test]
    fn depth_is_counted_as_the_parser_builds_it() {
        // Comments that HTML5 ends early hide nothing from the guard.
        for unit in ["<!--><div>", "<!---><div>", "<!-- x --!><div>", "<?x><div>", "<!x><div>", "</ x><div>"] {
            let html = unit.repeat(MAX_NESTING + 10);
            assert_eq!(
                sanitize_html(&html, LIMIT),
                Err(SanitizeError::TooDeep(TooDeep { limit: MAX_NESTING })),
                "{unit}"
            );
        }
        // Template contents hang off their template (the DOM keeps no link
        // up from them), and nesting counts through them.
        assert_eq!(
            sanitize_html(&"<template>".repeat(300), LIMIT),
            Err(SanitizeError::TooDeep(TooDeep { limit: MAX_NESTING }))
        );
        assert_eq!(
            sanitize_html(&"<template><div>".repeat(150), LIMIT),
            Err(SanitizeError::TooDeep(TooDeep { limit: MAX_NESTING }))
        );
        let shape = guard::check(&"<template>".repeat(100), &mut || {}).expect("within the bound");
        assert_eq!(shape.max_depth, 101, "the fragment's html element, then 100 templates");
        // End tags that close nothing do not lower the depth.
        assert!(matches!(sanitize_html(&"<div></span>".repeat(300), LIMIT), Err(SanitizeError::TooDeep(_))));
        // What only looks like nesting is not counted: comments, raw text, attribute values.
        assert!(sanitize_html(&format!("<!--{}-->", "<div>".repeat(600)), LIMIT).is_ok());
        assert!(sanitize_html(&format!("<textarea>{}</textarea>", "<div>".repeat(600)), LIMIT).is_ok());
        assert!(sanitize_html(&"<p title=\"<div><div>\">x</p>".repeat(300), LIMIT).is_ok());
        // Closed elements do not add up, however many.
        assert!(sanitize_html(&"<div>x</div>".repeat(2_000), LIMIT).is_ok());
        let shape = guard::check(&"<div>".repeat(100), &mut || {}).expect("within the bound");
        assert_eq!(shape.max_depth, 101, "the fragment's html element, then 100 divs");
    }

    #[test]
    fn quadratic_parser_work_is_refused_not_done() {
        let foster = format!("<table>{}", "<b></b>".repeat(10_000));
        assert!(matches!(sanitize_html(&foster, LIMIT), Err(SanitizeError::TooComplex(_))));
        let attributes: String = (0..20_000).map(|i| format!(" a{i}")).collect();
        let wide = format!("<b{attributes}>x</b>");
        assert_eq!(
            sanitize_html(&wide, 1_000_000),
            Err(SanitizeError::TokenTooLong(TokenTooLong { limit: guard::MAX_SILENT_BYTES }))
        );
        let comment = format!("<!--{}-->", "x".repeat(guard::MAX_SILENT_BYTES + guard::CHUNK));
        assert!(matches!(sanitize_html(&comment, LIMIT), Err(SanitizeError::TokenTooLong(_))));
        // A repeated <html> tag merges its attributes into the root, each
        // merge comparing with all merged before: quadratic, so charged.
        let roots: String = (0..8_000).map(|i| format!("<html a{i}>")).collect();
        assert!(matches!(sanitize_html(&roots, LIMIT), Err(SanitizeError::TooComplex(_))));
        assert!(sanitize_html(&"<html a>".repeat(1_000), LIMIT).is_ok(), "the same attribute adds nothing");
        // A long text is not a long token: text reaches the tree as it is read.
        assert!(sanitize_html(&"word ".repeat(19_000), LIMIT).is_ok());
        // A link with a 2 KB address is fine.
        let link = format!("<a href=\"https://x.test/{}\">x</a>", "a".repeat(2_000));
        assert!(sanitize_html(&link, LIMIT).is_ok());
    }

    #[test]
    fn every_adversarial_shape_stays_within_its_budget() {
        for shape in corpus::shapes(LIMIT) {
            let html = match shape.format {
                corpus::Format::Html => shape.text.clone(),
                corpus::Format::Markdown => match render_markdown(&shape.text, LIMIT) {
                    Ok(html) => html,
                    Err(SanitizeError::TooDeep(_) | SanitizeError::TooComplex(_) | SanitizeError::TokenTooLong(_)) => {
                        continue;
                    }
                    Err(SanitizeError::RendersTooLarge { .. } | SanitizeError::TooManyReferences { .. }) => continue,
                    Err(e) => panic!("{}: {e}", shape.name),
                },
            };
            match guard::check(&html, &mut || {}) {
                Ok(measured) => {
                    assert!(measured.max_depth <= MAX_NESTING, "{}", shape.name);
                    assert!(measured.work <= html.len() * guard::WORK_PER_BYTE + guard::BASE_BUDGET, "{}", shape.name);
                    let out = sanitize_html(&html, html.len()).expect("the guard accepted it");
                    assert_eq!(out, unguarded(&html), "{}: the guard must not change the tree", shape.name);
                    assert_only_safe_attributes(shape.name, &out);
                }
                Err(_) => assert!(sanitize_html(&html, html.len()).is_err(), "{}", shape.name),
            }
        }
    }

    /// Every input the fuzzer kept (fuzz/corpus/sanitize: the seeds, what
    /// raised coverage, and any finding) is refused or rendered within the
    /// bounds, as the fuzz target requires.
    #[test]
    fn fuzz_corpus_stays_within_its_bounds() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/sanitize");
        let Ok(entries) = std::fs::read_dir(&dir) else { panic!("no corpus at {}", dir.display()) };
        let mut replayed = 0;
        for entry in entries {
            let bytes = std::fs::read(entry.expect("an entry").path()).expect("readable");
            let Some((&mode, rest)) = bytes.split_first() else { continue };
            let text = String::from_utf8_lossy(rest);
            let out = if mode % 2 == 0 { sanitize_html(&text, LIMIT) } else { render_markdown(&text, LIMIT) };
            if let Ok(html) = out {
                assert!(html.len() <= html_limit(LIMIT));
                if mode % 2 == 0 {
                    assert_eq!(html, unguarded(&text), "the guard must not change the tree");
                }
            }
            replayed += 1;
        }
        assert!(replayed >= corpus::shapes(LIMIT).len(), "{replayed} inputs");
    }

    #[test]
    fn tick_runs_while_parsing() {
        let mut ticks = 0;
        let html = "<p>x</p>".repeat(10_000);
        sanitize_html_with(&html, LIMIT, &mut || ticks += 1).expect("sanitizes");
        assert!(ticks >= html.len() / guard::CHUNK, "{ticks} ticks");
        let mut ticks = 0;
        render_markdown_with(&"*a* ".repeat(10_000), LIMIT, &mut || ticks += 1).expect("renders");
        assert!(ticks >= 40, "{ticks} ticks");
    }

    #[test]
    fn rendered_html_is_bounded() {
        let definition = format!("[r]: https://x.test/{}\n\n", "a".repeat(1_000));
        let amplified = definition + &"[r] ".repeat(20_000);
        // Nested quotes: each `> ` opens a blockquote, closed again at the end.
        assert_eq!(
            render_markdown(&"> ".repeat(LIMIT / 2), LIMIT),
            Err(SanitizeError::RendersTooLarge { limit: html_limit(LIMIT) })
        );
        // pulldown-cmark stops expanding references itself; whatever it does, the bound holds.
        assert!(render_markdown(&amplified, LIMIT).is_ok_and(|html| html.len() <= html_limit(LIMIT)));
        let links = "[a](b) ".repeat(14_000);
        assert!(render_markdown(&links, LIMIT).is_ok_and(|html| html.len() <= html_limit(LIMIT)));
        assert_eq!(
            render_markdown(&links, LIMIT / 10),
            Err(SanitizeError::TooLarge(TooLarge { actual: links.len(), limit: LIMIT / 10 }))
        );
        // Escaping alone stays inside the bound, up to one reference in five bytes.
        assert!(render_markdown(&"&".repeat(LIMIT / REF_SPACING), LIMIT).is_ok());
        let refs = LIMIT / REF_SPACING + guard::CHUNK;
        assert_eq!(render_markdown(&"&".repeat(LIMIT), LIMIT), Err(SanitizeError::TooManyReferences { limit: refs }));
        assert_eq!(sanitize_html(&"&amp;".repeat(LIMIT / 5), LIMIT), Ok("&amp;".repeat(LIMIT / 5)));
    }

    /// Only `a` keeps attributes, only `href` and `rel`, and no `href` carries
    /// a script or data URL however it is spelled.
    fn assert_only_safe_attributes(name: &str, html: &str) {
        use html5ever::tokenizer::{BufferQueue, Tag, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts};
        struct Check(std::cell::RefCell<Vec<String>>);
        impl TokenSink for Check {
            type Handle = ();
            fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
                if let Token::TagToken(Tag { name, attrs, .. }) = token {
                    for attr in attrs {
                        let (tag, key) = (&*name, &*attr.name.local);
                        let value: String =
                            attr.value.chars().filter(|c| !c.is_ascii_whitespace() && !c.is_control()).collect();
                        let value = value.to_ascii_lowercase();
                        let ok = tag == "a"
                            && (key == "rel" || key == "href")
                            && !["javascript:", "data:", "vbscript:"].iter().any(|s| value.starts_with(s));
                        if !ok {
                            self.0.borrow_mut().push(format!("<{tag} {key}={value}>"));
                        }
                    }
                }
                TokenSinkResult::Continue
            }
        }
        let tokenizer = Tokenizer::new(Check(Default::default()), TokenizerOpts::default());
        let queue = BufferQueue::default();
        queue.push_back(html.into());
        let _ = tokenizer.feed(&queue);
        tokenizer.end();
        let bad = tokenizer.sink.0.borrow();
        assert!(bad.is_empty(), "{name}: {:?}", &bad[..bad.len().min(5)]);
    }

    #[test]
    fn markdown_is_rendered_then_sanitized() {
        assert_eq!(markdown("Hello *world*"), "<p>Hello <em>world</em></p>\n");
        let out = markdown("x <script>alert(1)</script> [a](javascript:alert(1))");
        assert!(!out.contains("script") && !out.contains("javascript"), "{out}");
        assert_eq!(markdown("## Title"), "<h2>Title</h2>\n");
        assert_eq!(markdown(""), "");
    }

    #[test]
    fn size_limit_is_exact_and_applies_to_both() {
        assert_eq!(sanitize_html("abcd", 3), Err(SanitizeError::TooLarge(TooLarge { actual: 4, limit: 3 })));
        assert_eq!(render_markdown("abcd", 3), Err(SanitizeError::TooLarge(TooLarge { actual: 4, limit: 3 })));
        assert_eq!(sanitize_html("abc", 3), Ok("abc".to_owned()));
        assert_eq!(check_size("abc", 3), Ok(()));
        assert_eq!(check_size("abcd", 3), Err(TooLarge { actual: 4, limit: 3 }));
        assert_eq!(check_size("é", 1), Err(TooLarge { actual: 2, limit: 1 }), "bytes, not characters");
    }
}

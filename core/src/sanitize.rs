//! HTML sanitizing (ammonia: html5ever, linear time, no regexes) and
//! Markdown rendering (pulldown-cmark) through the same sanitizer.
//!
//! The policy is the seed report's allowlist plus what a forum and a wiki
//! need (headings, rules, strike-through). Raw HTML inside Markdown is
//! sanitized like any other HTML, never trusted.

use std::collections::HashSet;
use std::sync::LazyLock;

use ammonia::{Builder, UrlRelative};
use pulldown_cmark::{Options, Parser};

/// Bumped whenever the policy below changes, so stored HTML rendered under an
/// older policy can be found (`render_version < POLICY_VERSION`) and re-rendered.
pub const POLICY_VERSION: i32 = 1;

/// The seed report's allowlist.
const BASE_TAGS: &[&str] = &["p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li", "a"];
/// Added for forum and wiki Markdown: headings, horizontal rules, strike-through.
const FORUM_TAGS: &[&str] = &["h1", "h2", "h3", "h4", "h5", "h6", "hr", "del"];
/// Dropped together with their content (not just their tags).
const CONTENT_DROPPED: &[&str] = &["script", "style", "template", "noscript", "iframe", "object", "embed", "svg", "math"];

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
/// does work proportional to the open-element stack for each new element, so
/// unbounded nesting is quadratic (measured: 8,000 nested `<ul><li>` took
/// 0.64 s, 100 KB of Markdown `- - - …` would take tens of seconds). Below this
/// bound the cost is linear in the input. Browsers cap the DOM depth at 512.
pub const MAX_NESTING: usize = 256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("content nests elements more than {limit} levels deep")]
pub struct TooDeep {
    pub limit: usize,
}

/// Elements that never hold children.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr",
];
/// Elements HTML closes implicitly when a sibling opens; counting them would
/// punish sloppy but harmless markup such as `a<p>b<p>c` (their containers,
/// such as `ul`, are still counted).
const SELF_CLOSING_SIBLINGS: &[&str] = &["p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "rb", "rt", "rp"];

/// A linear, conservative scan of element nesting: refuses input whose open
/// elements could stack deeper than [`MAX_NESTING`].
pub fn check_nesting(html: &str) -> Result<(), TooDeep> {
    let bytes = html.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'<' {
            i += 1;
            continue;
        }
        if bytes[i + 1..].starts_with(b"!--") {
            i = match html[i + 4..].find("-->") {
                Some(end) => i + 4 + end + 3,
                None => bytes.len(),
            };
            continue;
        }
        let closing = bytes.get(i + 1) == Some(&b'/');
        let start = i + 1 + usize::from(closing);
        let mut end = start;
        while end < bytes.len() && bytes[end].is_ascii_alphanumeric() {
            end += 1;
        }
        if end == start {
            i += 1;
            continue;
        }
        let name = html[start..end].to_ascii_lowercase();
        let counted = !VOID.contains(&name.as_str()) && !SELF_CLOSING_SIBLINGS.contains(&name.as_str());
        let tag_end = html[end..].find('>').map_or(bytes.len(), |k| end + k);
        let self_closed = tag_end > end && bytes.get(tag_end - 1) == Some(&b'/');
        if counted {
            if closing {
                depth = depth.saturating_sub(1);
            } else if !self_closed {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(TooDeep { limit: MAX_NESTING });
                }
            }
        }
        i = tag_end;
    }
    Ok(())
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SanitizeError {
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    #[error(transparent)]
    TooDeep(#[from] TooDeep),
}

pub fn check_size(input: &str, limit: usize) -> Result<(), TooLarge> {
    if input.len() > limit {
        return Err(TooLarge { actual: input.len(), limit });
    }
    Ok(())
}

/// Sanitized HTML under [`POLICY_VERSION`]; `limit` bounds the input bytes.
pub fn sanitize_html(html: &str, limit: usize) -> Result<String, SanitizeError> {
    check_size(html, limit)?;
    clean(html)
}

fn clean(html: &str) -> Result<String, SanitizeError> {
    check_nesting(html)?;
    Ok(POLICY.clean(html).to_string())
}

/// Markdown (CommonMark + strike-through) rendered, then sanitized; `limit`
/// bounds the Markdown bytes. pulldown-cmark is linear (measured: 50,000
/// nested list markers in 8 ms); its HTML is checked for nesting like any other.
pub fn render_markdown(markdown: &str, limit: usize) -> Result<String, SanitizeError> {
    check_size(markdown, limit)?;
    let parser = Parser::new_ext(markdown, Options::ENABLE_STRIKETHROUGH);
    let mut html = String::with_capacity(markdown.len() + markdown.len() / 4);
    pulldown_cmark::html::push_html(&mut html, parser);
    clean(&html)
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
        let out = sanitize(r#"<p><strong>b</strong> <a href="https://x.test/a" target="_blank" onclick="x()">l</a></p>"#);
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
            assert!(!lower.contains("onerror") && !lower.contains("onclick") && !lower.contains("onmouseover"), "{case} -> {out}");
            assert!(!lower.contains("<img") && !lower.contains("<svg") && !lower.contains("<math"), "{case} -> {out}");
            // Sanitizing is idempotent: the output parses to itself.
            assert_eq!(sanitize(&out), out, "{case}");
        }
    }

    #[test]
    fn keeps_unicode_intact() {
        let text = "<p>שלום مرحبا 👩‍👩‍👧 e\u{301} \u{202e}abc</p>";
        assert_eq!(sanitize(text), text);
    }

    #[test]
    fn refuses_deep_nesting_quickly_and_allows_the_bound() {
        let nested = |depth: usize| format!("{}x{}", "<ul><li>".repeat(depth), "</li></ul>".repeat(depth));
        assert!(sanitize(&nested(MAX_NESTING)).contains('x'));
        let deep = nested(10_000);
        assert_eq!(sanitize_html(&deep, 1_000_000), Err(SanitizeError::TooDeep(TooDeep { limit: MAX_NESTING })));
        let quotes = format!("{}x", "> ".repeat(10_000));
        assert_eq!(render_markdown(&quotes, LIMIT), Err(SanitizeError::TooDeep(TooDeep { limit: MAX_NESTING })));
        let lists = format!("{}x", "- ".repeat(10_000));
        assert!(matches!(render_markdown(&lists, LIMIT), Err(SanitizeError::TooDeep(_))));
        // Sloppy but shallow markup is not "deep".
        let paragraphs = "a<p>".repeat(5_000);
        assert!(sanitize_html(&paragraphs, LIMIT).is_ok());
        let breaks = "<br>".repeat(5_000) + &"<img src=x>".repeat(1_000) + &"<b/>".repeat(1_000);
        assert!(sanitize_html(&breaks, LIMIT).is_ok());
        // Many shallow nests in a row are fine: the bound is on depth, not count.
        let many = nested(100).repeat(20);
        assert!(sanitize_html(&many, LIMIT).is_ok());
    }

    #[test]
    fn nesting_scan_ignores_comments_and_stray_brackets() {
        assert_eq!(check_nesting("<!-- <div><div> --> a < b <> </ >"), Ok(()));
        assert_eq!(check_nesting(&"<!--".repeat(1000)), Ok(()));
        assert_eq!(check_nesting("<"), Ok(()));
        assert_eq!(check_nesting("</"), Ok(()));
        assert_eq!(check_nesting("<div"), Ok(()));
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

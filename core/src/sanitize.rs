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

pub fn check_size(input: &str, limit: usize) -> Result<(), TooLarge> {
    if input.len() > limit {
        return Err(TooLarge { actual: input.len(), limit });
    }
    Ok(())
}

/// Sanitized HTML under [`POLICY_VERSION`].
pub fn sanitize_html(html: &str) -> String {
    POLICY.clean(html).to_string()
}

/// Markdown (CommonMark + strike-through) rendered, then sanitized.
pub fn render_markdown(markdown: &str) -> String {
    let parser = Parser::new_ext(markdown, Options::ENABLE_STRIKETHROUGH);
    let mut html = String::with_capacity(markdown.len() + markdown.len() / 4);
    pulldown_cmark::html::push_html(&mut html, parser);
    sanitize_html(&html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_allowlist_and_forces_rel() {
        let out = sanitize_html(r#"<p><strong>b</strong> <a href="https://x.test/a" target="_blank" onclick="x()">l</a></p>"#);
        assert_eq!(out, r#"<p><strong>b</strong> <a href="https://x.test/a" rel="nofollow ugc noopener">l</a></p>"#);
    }

    #[test]
    fn drops_scripts_with_their_content() {
        let payload = format!("<script>{}{}</script>", "(".repeat(500), ")".repeat(500));
        assert_eq!(sanitize_html(&payload), "");
        assert_eq!(sanitize_html("a<script>alert(1)</script>b"), "ab");
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
            let out = sanitize_html(&format!(r#"<a href="{href}">x</a>"#));
            assert!(!out.contains("href"), "{href} -> {out}");
        }
        let relative = sanitize_html(r#"<a href="/t/42">x</a>"#);
        assert!(relative.contains(r#"href="/t/42""#), "{relative}");
        let mail = sanitize_html(r#"<a href="mailto:a@b.test">x</a>"#);
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
            let out = sanitize_html(case);
            let lower = out.to_lowercase();
            assert!(!lower.contains("onerror") && !lower.contains("onclick") && !lower.contains("onmouseover"), "{case} -> {out}");
            assert!(!lower.contains("<img") && !lower.contains("<svg") && !lower.contains("<math"), "{case} -> {out}");
            // Sanitizing is idempotent: the output parses to itself.
            assert_eq!(sanitize_html(&out), out, "{case}");
        }
    }

    #[test]
    fn keeps_unicode_intact() {
        let text = "<p>שלום مرحبا 👩‍👩‍👧 e\u{301} \u{202e}abc</p>";
        assert_eq!(sanitize_html(text), text);
    }

    #[test]
    fn survives_deep_nesting() {
        let depth = 10_000;
        let html = format!("{}x{}", "<ul><li>".repeat(depth), "</li></ul>".repeat(depth));
        let out = sanitize_html(&html);
        assert!(out.contains('x'));
        let md = format!("{}x", "> ".repeat(depth));
        assert!(render_markdown(&md).contains('x'));
        let list = format!("{}x", "- ".repeat(depth));
        assert!(render_markdown(&list).contains('x'));
    }

    #[test]
    fn markdown_is_rendered_then_sanitized() {
        assert_eq!(render_markdown("Hello *world*"), "<p>Hello <em>world</em></p>\n");
        let out = render_markdown("x <script>alert(1)</script> [a](javascript:alert(1))");
        assert!(!out.contains("script") && !out.contains("javascript"), "{out}");
        assert_eq!(render_markdown("## Title"), "<h2>Title</h2>\n");
        assert_eq!(render_markdown(""), "");
    }

    #[test]
    fn size_limit_is_exact() {
        assert_eq!(check_size("abc", 3), Ok(()));
        assert_eq!(check_size("abcd", 3), Err(TooLarge { actual: 4, limit: 3 }));
        assert_eq!(check_size("é", 1), Err(TooLarge { actual: 2, limit: 1 }), "bytes, not characters");
    }
}

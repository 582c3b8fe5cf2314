//! Deterministic filler text: names, titles, Markdown bodies and their HTML.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

const WORDS: &[&str] = &[
    "postgres",
    "index",
    "query",
    "latency",
    "socket",
    "replica",
    "cache",
    "thread",
    "reply",
    "topic",
    "wiki",
    "cursor",
    "vacuum",
    "commit",
    "buffer",
    "planner",
    "tuple",
    "schema",
    "trigger",
    "function",
    "pool",
    "proxy",
    "benchmark",
    "memory",
    "garden",
    "river",
    "mountain",
    "coffee",
    "bicycle",
    "lantern",
    "music",
    "harbor",
    "meadow",
    "compass",
    "journey",
    "library",
    "window",
    "summer",
    "winter",
    "autumn",
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "it",
    "that",
    "with",
    "for",
    "on",
    "was",
    "we",
    "this",
    "really",
    "quite",
    "simply",
    "maybe",
    "never",
    "always",
    "often",
    "usually",
    "works",
    "breaks",
    "runs",
    "fails",
    "scales",
    "helps",
    "needs",
    "shows",
    "keeps",
    "makes",
    "takes",
    "finds",
];

const FIRST_NAMES: &[&str] = &[
    "ada",
    "alan",
    "barbara",
    "brian",
    "claude",
    "donald",
    "edsger",
    "frances",
    "grace",
    "guido",
    "hedy",
    "ida",
    "james",
    "john",
    "ken",
    "linus",
    "margaret",
    "niklaus",
    "radia",
    "rob",
    "sophie",
    "tim",
    "ursula",
    "vint",
    "whitfield",
    "xavier",
    "yukihiro",
    "zed",
];

pub fn word(rng: &mut ChaCha8Rng) -> &'static str {
    WORDS[rng.random_range(0..WORDS.len())]
}

/// `grace_17`: unique by construction for distinct `n`.
pub fn username(n: u32) -> String {
    format!("{}_{}", FIRST_NAMES[n as usize % FIRST_NAMES.len()], n)
}

pub fn display_name(n: u32) -> String {
    let first = FIRST_NAMES[n as usize % FIRST_NAMES.len()];
    let mut chars = first.chars();
    let capitalized: String = chars.next().map(|c| c.to_ascii_uppercase()).into_iter().chain(chars).collect();
    format!("{capitalized} {n}")
}

/// A sentence-cased line of `min..=max` words, no trailing period.
pub fn phrase(rng: &mut ChaCha8Rng, min: usize, max: usize) -> String {
    let count = rng.random_range(min..=max);
    let mut out = String::with_capacity(count * 8);
    for i in 0..count {
        let w = word(rng);
        if i == 0 {
            let mut chars = w.chars();
            if let Some(c) = chars.next() {
                out.push(c.to_ascii_uppercase());
                out.push_str(chars.as_str());
            }
        } else {
            out.push(' ');
            out.push_str(w);
        }
    }
    out
}

/// A Markdown body of `paragraphs` paragraphs, optionally mentioning someone,
/// with the HTML the sanitizer would produce for it (plain paragraphs only).
pub struct Body {
    pub markdown: String,
    pub html: String,
}

pub fn body(rng: &mut ChaCha8Rng, paragraphs: std::ops::RangeInclusive<usize>, mention: Option<&str>) -> Body {
    let paragraphs = rng.random_range(paragraphs);
    let mut markdown = String::new();
    let mut html = String::new();
    for p in 0..paragraphs {
        let sentences = rng.random_range(1..=3);
        let mut text = String::new();
        for s in 0..sentences {
            if s > 0 {
                text.push(' ');
            }
            text.push_str(&phrase(rng, 5, 16));
            text.push('.');
        }
        if let (0, Some(name)) = (p, mention) {
            text = format!("@{name} {text}");
        }
        if p > 0 {
            markdown.push_str("\n\n");
        }
        markdown.push_str(&text);
        html.push_str("<p>");
        push_escaped(&mut html, &text);
        html.push_str("</p>\n");
    }
    Body { markdown, html }
}

pub fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            other => out.push(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn bodies_are_deterministic_and_escaped() {
        let a = body(&mut ChaCha8Rng::seed_from_u64(7), 3..=3, Some("ada_0"));
        let b = body(&mut ChaCha8Rng::seed_from_u64(7), 3..=3, Some("ada_0"));
        assert_eq!(a.markdown, b.markdown);
        assert!(a.markdown.starts_with("@ada_0 "));
        assert_eq!(a.html.matches("<p>").count(), 3);
        let mut escaped = String::new();
        push_escaped(&mut escaped, "<b>\"&\"</b>");
        assert_eq!(escaped, "&lt;b&gt;&quot;&amp;&quot;&lt;/b&gt;");
    }

    #[test]
    fn usernames_fit_the_schema() {
        for n in [0, 1, 27, 28, 9_999, 49_999] {
            let name = username(n);
            assert!((3..=32).contains(&name.len()), "{name}");
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{name}");
        }
    }
}

//! Names and sizes that the proxy checks and the extension or the schema
//! enforce, stated once. The schema's CHECK constraints say the same in SQL;
//! `tests/tests/sql/schema.rs` holds the two to agreement on sample inputs.

/// Rows of a page (topic lists, notifications, activity, wiki lists).
pub const PAGE_SIZE_DEFAULT: i32 = 20;
pub const PAGE_SIZE_MAX: i32 = 100;

/// Reply walks: what a call may ask for, whatever the settings say.
pub const REPLY_DEPTH_CEILING: i32 = 1_000;
pub const REPLY_ROWS_CEILING: i32 = 10_000;
/// Rows of one reply page over HTTP: what a page of a UI shows, far below
/// the SQL function's ceiling (a DBA may ask for 10,000).
pub const REPLY_ROWS_HTTP: i32 = 500;

/// Bodies of topics, replies and wiki revisions: the default of
/// `veritable.max_content_bytes`, and the tables' CHECK (its ceiling).
pub const CONTENT_BYTES_DEFAULT: i32 = 100_000;
pub const CONTENT_BYTES_CEILING: i32 = 1_000_000;

pub const TITLE_MAX_CHARS: usize = 300;
pub const TAGS_PER_TOPIC_MAX: usize = 5;
pub const TAG_MAX_CHARS: usize = 32;
pub const CATEGORY_SLUG_MAX_CHARS: usize = 64;
pub const WIKI_SLUG_MAX_CHARS: usize = 200;
pub const WIKI_COMMENT_MAX_CHARS: usize = 500;
pub const DISPLAY_NAME_MAX_CHARS: usize = 64;
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 8..=256;
pub const EMAIL_CHARS: std::ops::RangeInclusive<usize> = 3..=254;
pub const PREFERENCES_MAX_BYTES: usize = 16 * 1024;

/// A slug or tag: runs of `a-z` and `0-9` joined by single dashes, at most
/// `max_chars` (the CHECK `^[a-z0-9]+(-[a-z0-9]+)*$`).
#[must_use]
pub fn is_slug(text: &str, max_chars: usize) -> bool {
    text.len() <= max_chars
        && text
            .split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

/// A username: 3 to 32 of `A-Za-z0-9_` (the CHECK `^[A-Za-z0-9_]{3,32}$`).
#[must_use]
pub fn is_username(name: &str) -> bool {
    (3..=32).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// An e-mail address as the table takes it: 3 to 254 characters matching
/// `^[^@\s]+@[^@\s]+$` (Rust's whitespace is a superset of PostgreSQL's `\s`,
/// so nothing accepted here is refused there).
#[must_use]
pub fn is_email(email: &str) -> bool {
    let well_formed = email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    EMAIL_CHARS.contains(&email.chars().count()) && well_formed && !email.chars().any(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_names() {
        assert!(is_slug("rust-async-io", 32) && is_slug("a1", 2));
        for bad in ["", "-a", "a-", "a--b", "A", "a_b", "ä", "a b"] {
            assert!(!is_slug(bad, 200), "{bad}");
        }
        assert!(!is_slug(&"a".repeat(33), TAG_MAX_CHARS));
        assert!(
            is_username("demo_1") && !is_username("ab") && !is_username("with space") && !is_username(&"a".repeat(33))
        );
        assert!(is_email("a@b") && !is_email("a@b@c") && !is_email("@b") && !is_email("a @b") && !is_email("ab"));
    }
}

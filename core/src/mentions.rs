//! `@username` mentions: one linear pass, no regex, at most [`MAX_MENTIONS`].

/// Mentions past this many in one post are ignored (a post cannot page the
/// whole forum).
pub const MAX_MENTIONS: usize = 20;

/// Usernames are `[A-Za-z0-9_]{3,32}` (see the `users` table).
const MIN_LEN: usize = 3;
const MAX_LEN: usize = 32;

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Distinct lower-cased usernames mentioned in `text`, in order of first
/// appearance. An `@` counts only at the start or after a byte that cannot
/// be part of a name or an email address (so `a@b.test` is no mention).
pub fn parse(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut found: Vec<String> = Vec::new();
    let mut i = 0;
    while i < bytes.len() && found.len() < MAX_MENTIONS {
        if bytes[i] != b'@' || (i > 0 && (is_name_byte(bytes[i - 1]) || bytes[i - 1] == b'@')) {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut end = start;
        while end < bytes.len() && is_name_byte(bytes[end]) {
            end += 1;
        }
        let len = end - start;
        if (MIN_LEN..=MAX_LEN).contains(&len) {
            let name = text[start..end].to_ascii_lowercase();
            if !found.contains(&name) {
                found.push(name);
            }
        }
        i = end.max(i + 1);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_names_once_in_order() {
        assert_eq!(parse("hi @Ada_1 and @bob_2, @ada_1 again"), vec!["ada_1", "bob_2"]);
        assert_eq!(parse("@start"), vec!["start"]);
    }

    #[test]
    fn ignores_emails_short_and_long_names() {
        assert!(parse("mail a@b.test or x@yz").is_empty());
        assert!(parse("@ab").is_empty());
        assert!(parse(&format!("@{}", "a".repeat(33))).is_empty());
        assert!(parse("@@double").is_empty());
    }

    #[test]
    fn stops_at_twenty() {
        let text: String = (0..100).map(|n| format!("@user_{n} ")).collect();
        assert_eq!(parse(&text).len(), MAX_MENTIONS);
    }

    #[test]
    fn handles_unicode_around_names() {
        assert_eq!(parse("שלום @dana_7 👋"), vec!["dana_7"]);
        assert_eq!(parse("é@nope"), vec!["nope"], "é is not a name byte");
    }

    #[test]
    fn is_linear_on_hostile_input() {
        let text = "@".repeat(100_000) + &"a".repeat(100_000);
        assert!(parse(&text).is_empty());
    }
}

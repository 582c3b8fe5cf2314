//! Opaque keyset cursors for topic pages: the sort key of the last row seen.
//! Clients pass them back unchanged; a tampered cursor is an error, not a
//! different page.

/// Topic pages sort by pinned first, then last activity, then id, all descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicKey {
    pub pinned: bool,
    /// Microseconds since the PostgreSQL epoch (2000-01-01), as timestamptz stores them.
    pub last_activity_micros: i64,
    pub id: i64,
}

const PREFIX: &str = "t1.";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid cursor: pass back the next_cursor of a previous page unchanged")]
pub struct InvalidCursor;

impl TopicKey {
    pub fn encode(&self) -> String {
        format!("{PREFIX}{}.{}.{}", u8::from(self.pinned), self.last_activity_micros, self.id)
    }

    pub fn decode(cursor: &str) -> Result<Self, InvalidCursor> {
        let rest = cursor.strip_prefix(PREFIX).ok_or(InvalidCursor)?;
        let mut parts = rest.split('.');
        let pinned = match parts.next() {
            Some("0") => false,
            Some("1") => true,
            _ => return Err(InvalidCursor),
        };
        let last_activity_micros = parts.next().and_then(|p| p.parse().ok()).ok_or(InvalidCursor)?;
        let id = parts.next().and_then(|p| p.parse().ok()).filter(|id: &i64| *id > 0).ok_or(InvalidCursor)?;
        if parts.next().is_some() {
            return Err(InvalidCursor);
        }
        Ok(Self { pinned, last_activity_micros, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let key = TopicKey { pinned: true, last_activity_micros: -5, id: 42 };
        assert_eq!(TopicKey::decode(&key.encode()), Ok(key));
    }

    #[test]
    fn rejects_tampering() {
        for bad in [
            "",
            "t1.",
            "t1.2.0.1",
            "t1.1.x.1",
            "t1.1.0.0",
            "t1.1.0.-3",
            "t1.1.0.1.9",
            "t2.1.0.1",
            "t1.1.0.99999999999999999999",
        ] {
            assert_eq!(TopicKey::decode(bad), Err(InvalidCursor), "{bad}");
        }
    }
}

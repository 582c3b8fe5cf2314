//! Users: the named demo accounts, then generated ones.

use super::*;

pub(super) struct UserRow {
    pub(super) id: i64,
    pub(super) username: String,
    pub(super) display_name: String,
    pub(super) email: String,
    pub(super) password_hash: String,
    pub(super) role: &'static str,
    pub(super) created_at: SystemTime,
}

impl Row for UserRow {
    fn values(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.id,
            &self.username,
            &self.display_name,
            &self.email,
            &self.password_hash,
            &self.role,
            &self.created_at,
            &self.created_at,
        ]
    }
}

/// The named demo accounts come first: ids 1, 2, 3.
pub(super) const NAMED: &[(&str, &str, &str)] =
    &[("admin", "Admin", "admin"), ("moderator", "Moderator", "moderator"), ("demo", "Demo User", "member")];

pub(super) async fn load_users(
    load: &mut Loader<'_>,
    shape: &Shape,
    seed: u64,
    password_hash: &str,
) -> anyhow::Result<()> {
    let mut rng = stream(seed, 1);
    let start = END_SECS - SPAN_SECS;
    let rows = (0..shape.users).map(move |n| {
        let (username, display_name, role) = match NAMED.get(n as usize) {
            Some((u, d, r)) => ((*u).to_owned(), (*d).to_owned(), *r),
            None => (text::username(n), text::display_name(n), "member"),
        };
        UserRow {
            id: i64::from(n) + 1,
            email: format!("{username}@example.test"),
            username,
            display_name,
            password_hash: password_hash.to_owned(),
            role,
            created_at: at(start + rng.random_range(0..SPAN_SECS / 4)),
        }
    });
    load.copy(
        "users",
        &[
            ("id", Type::INT8),
            ("username", Type::TEXT),
            ("display_name", Type::TEXT),
            ("email", Type::TEXT),
            ("password_hash", Type::TEXT),
            ("role", Type::TEXT),
            ("created_at", Type::TIMESTAMPTZ),
            ("updated_at", Type::TIMESTAMPTZ),
        ],
        u64::from(shape.users),
        rows,
    )
    .await
}

/// The username the seed gives user `id` (see `load_users`).
pub fn username_of(id: i64) -> String {
    let n = u32::try_from(id - 1).unwrap_or(0);
    match NAMED.get(n as usize) {
        Some((name, _, _)) => (*name).to_owned(),
        None => text::username(n),
    }
}

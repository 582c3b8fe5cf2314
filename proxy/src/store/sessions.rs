//! Sessions: lookup, creation, revocation (by token hash).

use tokio_postgres::Row;
use tokio_postgres::types::Type;

use super::ids::UserId;
use super::{Conn, Sql};

/// The hot record, renewing the session in the same statement when less than
/// a day of its lifetime has been used up (sliding expiry, at most one write
/// a day per session). One round trip per cache miss.
pub const LOOKUP: Sql = Sql {
    name: "session_lookup",
    types: &[Type::BYTEA, Type::INT4],
    text: "WITH live AS (
         SELECT s.id, s.user_id, u.username, u.role, s.expires_at
           FROM sessions s JOIN users u ON u.id = s.user_id
          WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now() AND NOT u.is_deleted
     ), renewed AS (
         UPDATE sessions SET expires_at = now() + make_interval(days => $2), last_seen_at = now()
          WHERE token_hash = $1 AND EXISTS (SELECT 1 FROM live)
            AND expires_at < now() + make_interval(days => $2 - 1)
         RETURNING expires_at
     )
     SELECT live.id, live.user_id, live.username, live.role,
            extract(epoch FROM coalesce((SELECT expires_at FROM renewed), live.expires_at))::bigint
       FROM live",
};

pub const CREATE: Sql = Sql {
    name: "session_create",
    types: &[Type::INT8, Type::BYTEA, Type::INT4],
    text: "INSERT INTO sessions (user_id, token_hash, expires_at) VALUES ($1, $2, now() + make_interval(days => $3))",
};

pub const REVOKE: Sql = Sql {
    name: "session_revoke",
    types: &[Type::BYTEA],
    text: "UPDATE sessions SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL",
};

impl Conn {
    pub async fn session_lookup(&self, hash: &[u8], lifetime_days: i32) -> Result<Option<Row>, tokio_postgres::Error> {
        self.opt(&LOOKUP, &[&hash, &lifetime_days]).await
    }

    pub async fn session_create(
        &self,
        user: UserId,
        hash: &[u8],
        lifetime_days: i32,
    ) -> Result<(), tokio_postgres::Error> {
        self.rows(&CREATE, &[&user.0, &hash, &lifetime_days]).await.map(drop)
    }

    pub async fn session_revoke(&self, hash: &[u8]) -> Result<(), tokio_postgres::Error> {
        self.rows(&REVOKE, &[&hash]).await.map(drop)
    }
}

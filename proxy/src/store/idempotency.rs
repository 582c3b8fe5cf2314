//! Idempotency keys (`http::idempotency`): claiming a key inside a
//! request's transaction, and storing its answer there.

use tokio_postgres::types::Type;

use super::{Conn, Sql};

/// How long a key is remembered (as a PostgreSQL interval; [`CLAIM`] states it too).
pub const KEEP: &str = "24 hours";

/// No row: the key is this request's now. A row: the request that used it
/// first (its hash) and its answer. Waits at most 2 s (the function's own
/// `lock_timeout`) for a request still running with the key.
pub const CLAIM: Sql = Sql {
    name: "idempotency_claim",
    types: &[Type::INT8, Type::TEXT, Type::BYTEA],
    text: "SELECT request_hash, status, body FROM veritable.idempotency_claim($1, $2, $3, interval '24 hours')",
};

pub const STORE: Sql = Sql {
    name: "idempotency_store",
    types: &[Type::INT8, Type::TEXT, Type::INT2, Type::TEXT],
    text: "UPDATE idempotency_keys SET status = $3, body = $4 WHERE user_id = $1 AND key = $2",
};

/// The first answer given under a key.
pub struct Stored {
    pub request_hash: Vec<u8>,
    pub status: i16,
    pub body: Option<String>,
}

impl Conn {
    pub async fn idempotency_claim(
        &self,
        user: i64,
        key: &str,
        hash: &[u8],
    ) -> Result<Option<Stored>, tokio_postgres::Error> {
        Ok(self.opt(&CLAIM, &[&user, &key, &hash]).await?.map(|row| Stored {
            request_hash: row.get(0),
            status: row.get::<_, Option<i16>>(1).unwrap_or(200),
            body: row.get(2),
        }))
    }

    pub async fn idempotency_store(
        &self,
        user: i64,
        key: &str,
        status: u16,
        body: &str,
    ) -> Result<(), tokio_postgres::Error> {
        let status = i16::try_from(status).unwrap_or(200);
        self.rows(&STORE, &[&user, &key, &status, &body]).await.map(drop)
    }
}

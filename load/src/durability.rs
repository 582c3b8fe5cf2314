//! The durability check: every reply the proxy acknowledged (201) must be in
//! the database at the end, looked up by id over a fresh connection (the run
//! may have restarted PostgreSQL). A fault run passes only with 0 lost. With
//! keyed posts (`--retry-writes`), also every post written once: replies
//! carrying the same key in their body are a post written twice.

use serde::Serialize;

use crate::http::Ack;

#[derive(Debug, Clone, Serialize)]
pub struct Writes {
    /// Replies answered 201.
    pub acknowledged: u64,
    /// Of those, the ones found by id.
    pub present: u64,
    pub lost: u64,
    /// Keyed posts only: replies beyond the first of one key (0 when every
    /// retry was answered from the idempotency store instead of written).
    pub doubled: Option<u64>,
    /// Keyed posts sent again after an unknown outcome.
    pub retried: u64,
}

impl Writes {
    pub fn passed(&self) -> bool {
        self.lost == 0 && self.doubled.unwrap_or(0) == 0
    }
}

/// Ids per lookup statement.
const CHUNK: usize = 50_000;

/// Looks every acknowledged reply up, and with `key_tag` (what every keyed
/// post of the run carries in its body) counts replies written twice; None
/// (with a warning) when the database cannot be reached.
pub async fn check(database_url: &str, acks: &[Ack], key_tag: Option<&str>, retried: u64) -> Option<Writes> {
    let counted = async {
        let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls).await?;
        let task = tokio::spawn(connection);
        let ids: Vec<i64> = acks.iter().map(|a| a.reply).collect();
        let mut present = 0;
        for chunk in ids.chunks(CHUNK) {
            let row = client.query_one("SELECT count(*) FROM forum_replies WHERE id = ANY($1)", &[&chunk]).await?;
            present += row.get::<_, i64>(0);
        }
        let mut doubled = None;
        if let Some(tag) = key_tag {
            let pattern = format!("%{tag}%");
            let row = client
                .query_one("SELECT count(*) - count(DISTINCT body) FROM forum_replies WHERE body LIKE $1", &[&pattern])
                .await?;
            doubled = Some(row.get::<_, i64>(0));
        }
        task.abort();
        Ok::<_, tokio_postgres::Error>((present, doubled))
    };
    match counted.await {
        Ok((present, doubled)) => {
            let acknowledged = acks.len() as u64;
            let present = u64::try_from(present).unwrap_or(0);
            let doubled = doubled.map(|d| u64::try_from(d).unwrap_or(0));
            Some(Writes { acknowledged, present, lost: acknowledged.saturating_sub(present), doubled, retried })
        }
        Err(error) => {
            eprintln!("veritable-load: cannot check the acknowledged replies in the database: {error}");
            None
        }
    }
}

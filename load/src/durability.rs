//! The durability check: every reply the proxy acknowledged (201) must be in
//! the database at the end, looked up by id over a fresh connection (the run
//! may have restarted PostgreSQL). A fault run passes only with 0 lost.

use serde::Serialize;

use crate::http::Ack;

#[derive(Debug, Clone, Serialize)]
pub struct Writes {
    /// Replies answered 201.
    pub acknowledged: u64,
    /// Of those, the ones found by id.
    pub present: u64,
    pub lost: u64,
}

impl Writes {
    pub fn passed(&self) -> bool {
        self.lost == 0
    }
}

/// Ids per lookup statement.
const CHUNK: usize = 50_000;

/// Looks every acknowledged reply up; None (with a warning) when the
/// database cannot be reached.
pub async fn check(database_url: &str, acks: &[Ack]) -> Option<Writes> {
    let counted = async {
        let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls).await?;
        let task = tokio::spawn(connection);
        let ids: Vec<i64> = acks.iter().map(|a| a.reply).collect();
        let mut present = 0;
        for chunk in ids.chunks(CHUNK) {
            let row = client.query_one("SELECT count(*) FROM forum_replies WHERE id = ANY($1)", &[&chunk]).await?;
            present += row.get::<_, i64>(0);
        }
        task.abort();
        Ok::<i64, tokio_postgres::Error>(present)
    };
    match counted.await {
        Ok(present) => {
            let acknowledged = acks.len() as u64;
            let present = u64::try_from(present).unwrap_or(0);
            Some(Writes { acknowledged, present, lost: acknowledged.saturating_sub(present) })
        }
        Err(error) => {
            eprintln!("veritable-load: cannot check the acknowledged replies in the database: {error}");
            None
        }
    }
}

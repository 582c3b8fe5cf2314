//! Rate limits kept in PostgreSQL (`veritable.rate_limit`).

use tokio_postgres::types::Type;

use super::{Conn, Sql};
use crate::AppError;

pub const HIT: Sql = Sql {
    name: "rate_limit",
    types: &[Type::TEXT, Type::INT4, Type::INT4],
    text: "SELECT veritable.rate_limit($1, $2, make_interval(secs => $3))",
};

impl Conn {
    /// Counts one hit of `key`; the seconds to wait when over `max` per
    /// `window_secs`, else 0.
    pub async fn rate_limit(&self, key: &str, max: i32, window_secs: i32) -> Result<i32, AppError> {
        Ok(self.one(&HIT, &[&key, &max, &window_secs]).await?.get(0))
    }
}

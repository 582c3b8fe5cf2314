//! Users: registration, login lookup, preferences.

use tokio_postgres::Row;
use tokio_postgres::types::Type;

use super::ids::UserId;
use super::{Conn, Sql};
use crate::AppError;

pub const PREFERENCES: Sql =
    Sql { name: "preferences", types: &[Type::INT8], text: "SELECT preferences::text FROM users WHERE id = $1" };

pub const SAVE_PREFERENCES: Sql = Sql {
    name: "preferences_save",
    types: &[Type::INT8, Type::TEXT],
    text: "UPDATE users SET preferences = $2::jsonb, updated_at = now() WHERE id = $1 RETURNING preferences::text",
};

pub const TAKEN: Sql = Sql {
    name: "user_taken",
    types: &[Type::TEXT, Type::TEXT],
    text: "SELECT EXISTS (SELECT 1 FROM users WHERE lower(username) = lower($1)),
                  EXISTS (SELECT 1 FROM users WHERE lower(email) = lower($2))",
};

pub const REGISTER: Sql = Sql {
    name: "user_register",
    types: &[Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT],
    text: "INSERT INTO users (username, display_name, email, password_hash) VALUES ($1, $2, $3, $4)
  RETURNING json_build_object('id', id, 'username', username, 'display_name', display_name, 'role', role)::text",
};

pub const FIND: Sql = Sql {
    name: "user_find",
    types: &[Type::TEXT],
    text: "SELECT id, password_hash,
        json_build_object('id', id, 'username', username, 'display_name', display_name, 'role', role)::text
   FROM users WHERE lower(username) = lower($1) AND NOT is_deleted",
};

impl Conn {
    /// The user's preferences as JSON text, if the user exists.
    pub async fn preferences(&self, user: UserId) -> Result<Option<String>, tokio_postgres::Error> {
        Ok(self.opt(&PREFERENCES, &[&user.0]).await?.map(|row| row.get(0)))
    }

    pub async fn preferences_save(
        &self,
        user: UserId,
        preferences: &str,
    ) -> Result<Option<Row>, tokio_postgres::Error> {
        self.write(&SAVE_PREFERENCES, &[&user.0, &preferences]).await
    }

    /// Whether the username (case-insensitively) and the e-mail are taken.
    pub async fn user_taken(&self, username: &str, email: &str) -> Result<(bool, bool), AppError> {
        let row = self.one(&TAKEN, &[&username, &email]).await?;
        Ok((row.get(0), row.get(1)))
    }

    /// The new user's row (id, username, display name); a unique violation
    /// names its constraint.
    pub async fn user_register(
        &self,
        username: &str,
        display_name: &str,
        email: &str,
        password_hash: &str,
    ) -> Result<Option<Row>, tokio_postgres::Error> {
        self.opt(&REGISTER, &[&username, &display_name, &email, &password_hash]).await
    }

    /// The user a login names: id and password hash, if any.
    pub async fn user_find(&self, username: &str) -> Result<Option<Row>, tokio_postgres::Error> {
        self.opt(&FIND, &[&username]).await
    }
}

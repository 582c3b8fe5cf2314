//! Realtime: presence, typing, room checks and the backlog of a room.

use tokio_postgres::Row;
use tokio_postgres::types::Type;

use super::ids::{CategoryId, TopicId};
use super::{Conn, Sql};
use crate::AppError;

pub const TOPIC_EXISTS: Sql =
    Sql { name: "ws_topic", types: &[Type::INT8], text: "SELECT 1 FROM forum_topics WHERE id = $1 AND NOT is_deleted" };

pub const CATEGORY_EXISTS: Sql =
    Sql { name: "ws_category", types: &[Type::INT8], text: "SELECT 1 FROM forum_categories WHERE id = $1" };

pub const WIKI_EXISTS: Sql =
    Sql { name: "ws_wiki", types: &[Type::TEXT], text: "SELECT 1 FROM wiki_pages WHERE slug = $1 AND NOT is_deleted" };

pub const BACKLOG: Sql = Sql {
    name: "ws_backlog",
    types: &[Type::TEXT, Type::INT8, Type::INT8, Type::INT8],
    text:
        "SELECT seq, json_build_object('type', 'event', 'room', room, 'id', seq, 'kind', kind, 'data', payload)::text,
                  created_at < now() - interval '10 minutes'
             FROM events WHERE room = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4",
};

pub const OLDEST: Sql =
    Sql { name: "ws_oldest", types: &[], text: "SELECT min(seq) FROM events WHERE seq IS NOT NULL" };

pub const PRESENCE_OF: Sql =
    Sql { name: "presence_of", types: &[Type::TEXT], text: "SELECT veritable.presence_of($1)::text" };

pub const TYPING: Sql =
    Sql { name: "typing_notify", types: &[Type::TEXT], text: "SELECT pg_notify('veritable_typing', $1)" };

pub const PRESENCE_SYNC: Sql = Sql {
    name: "presence_sync",
    types: &[Type::TEXT, Type::TEXT_ARRAY, Type::INT8_ARRAY, Type::FLOAT8],
    text: "SELECT count(*) FROM veritable.presence_sync($1, $2, $3, make_interval(secs => $4))",
};

impl Conn {
    pub async fn topic_exists(&self, id: TopicId) -> Result<bool, tokio_postgres::Error> {
        Ok(self.opt(&TOPIC_EXISTS, &[&id.0]).await?.is_some())
    }

    pub async fn category_exists(&self, id: CategoryId) -> Result<bool, tokio_postgres::Error> {
        Ok(self.opt(&CATEGORY_EXISTS, &[&id.0]).await?.is_some())
    }

    pub async fn wiki_exists(&self, slug: &str) -> Result<bool, tokio_postgres::Error> {
        Ok(self.opt(&WIKI_EXISTS, &[&slug]).await?.is_some())
    }

    /// The room's events in (since, cursor], at most `limit`: seq, frame,
    /// and whether any is too old to replay.
    pub async fn backlog(
        &self,
        room: &str,
        since: i64,
        cursor: i64,
        limit: i64,
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        self.rows(&BACKLOG, &[&room, &since, &cursor, &limit]).await
    }

    /// The oldest sequenced event kept, if any.
    pub async fn oldest_event(&self) -> Result<Option<i64>, AppError> {
        Ok(self.one(&OLDEST, &[]).await?.get(0))
    }

    /// Who is in the room, as JSON text.
    pub async fn presence_of(&self, room: &str) -> Result<String, AppError> {
        Ok(self.one(&PRESENCE_OF, &[&room]).await?.get(0))
    }

    pub async fn typing_notify(&self, frame: &str) -> Result<(), tokio_postgres::Error> {
        self.rows(&TYPING, &[&frame]).await.map(drop)
    }

    pub async fn presence_sync(
        &self,
        proxy: &str,
        rooms: &[String],
        users: &[i64],
        ttl_secs: f64,
    ) -> Result<(), tokio_postgres::Error> {
        self.rows(&PRESENCE_SYNC, &[&proxy, &rooms, &users, &ttl_secs]).await.map(drop)
    }
}

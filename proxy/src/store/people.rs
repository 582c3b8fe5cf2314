//! Notifications and activity.

use tokio_postgres::types::Type;

use super::ids::UserId;
use super::{Conn, Sql};
use crate::AppError;

pub const NOTIFICATIONS: Sql = Sql {
    name: "notifications",
    types: &[Type::INT8, Type::BOOL, Type::INT8, Type::INT4],
    text: concat!(
        "SELECT ",
        crate::page_json!("$4"),
        "
   FROM (SELECT row_number() OVER (ORDER BY n.id DESC) AS n, n.id::text AS key,
                json_build_object('id', n.id, 'kind', n.kind,
                    'actor', CASE WHEN a.id IS NOT NULL THEN json_build_object('id', a.id, 'username', a.username) END,
                    'topic_id', n.topic_id, 'reply_id', n.reply_id, 'wiki_page_id', n.wiki_page_id,
                    'data', n.data, 'read_at', n.read_at, 'created_at', n.created_at) AS item
           FROM notifications n LEFT JOIN users a ON a.id = n.actor_id
          WHERE n.user_id = $1 AND (NOT $2 OR n.read_at IS NULL) AND n.id < coalesce($3, 9223372036854775807)
          ORDER BY n.id DESC LIMIT $4 + 1) p"
    ),
};

pub const MARK_READ: Sql = Sql {
    name: "notifications_read",
    types: &[Type::INT8, Type::BOOL, Type::INT8_ARRAY],
    text: "WITH marked AS (
       UPDATE notifications SET read_at = now()
        WHERE user_id = $1 AND read_at IS NULL AND ($2 OR id = ANY($3))
       RETURNING 1)
     SELECT count(*) FROM marked",
};

pub const ACTIVITY: Sql = Sql {
    name: "user_activity",
    types: &[Type::INT8, Type::INT8, Type::INT4],
    text: concat!(
        "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM users WHERE id = $1 AND NOT is_deleted) THEN NULL
        ELSE ",
        crate::page_json!("$3"),
        " END
   FROM (SELECT row_number() OVER (ORDER BY a.id DESC) AS n, a.id::text AS key,
                json_build_object('id', a.id, 'kind', a.kind, 'topic_id', a.topic_id, 'topic_title', t.title,
                    'reply_id', a.reply_id, 'wiki_slug', w.slug, 'wiki_revision_id', a.wiki_revision_id,
                    'created_at', a.created_at) AS item
           FROM unified_activity a
           LEFT JOIN forum_topics t ON t.id = a.topic_id
           LEFT JOIN wiki_pages w ON w.id = a.wiki_page_id
          WHERE a.user_id = $1 AND a.id < coalesce($2, 9223372036854775807)
            AND (t.id IS NULL OR NOT t.is_deleted)
          ORDER BY a.id DESC LIMIT $3 + 1) p"
    ),
};

impl Conn {
    /// One page of the user's notifications as JSON text.
    pub async fn notifications(
        &self,
        user: UserId,
        unread: bool,
        cursor: Option<i64>,
        limit: i32,
    ) -> Result<String, AppError> {
        Ok(self.one(&NOTIFICATIONS, &[&user.0, &unread, &cursor, &limit]).await?.get(0))
    }

    /// Marks all or these notifications read; how many changed.
    pub async fn notifications_read(&self, user: UserId, all: bool, ids: &[i64]) -> Result<i64, tokio_postgres::Error> {
        Ok(self.write(&MARK_READ, &[&user.0, &all, &ids]).await?.map_or(0, |row| row.get(0)))
    }

    /// One page of a user's activity as JSON text; None for no such user.
    pub async fn user_activity(
        &self,
        user: UserId,
        cursor: Option<i64>,
        limit: i32,
    ) -> Result<Option<String>, AppError> {
        Ok(self.one(&ACTIVITY, &[&user.0, &cursor, &limit]).await?.get(0))
    }
}

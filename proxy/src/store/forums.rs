//! Forums: categories, topic pages and details, reply trees, topic and reply writes.

use tokio_postgres::Row;
use tokio_postgres::types::Type;

use super::ids::{CategoryId, ReplyId, TopicId, UserId};
use super::{Conn, Sql};
use crate::AppError;

/// A new topic, as `topic_create` takes it.
pub struct NewTopic<'a> {
    pub category: CategoryId,
    pub author: UserId,
    pub title: &'a str,
    pub body: &'a str,
    pub tags: &'a [String],
    /// The author's posting-limit key.
    pub key: &'a str,
    pub per_minute: i32,
}

/// A change of a topic: `None` keeps a field.
pub struct TopicChange<'a> {
    pub id: TopicId,
    pub title: Option<&'a str>,
    pub body: Option<&'a str>,
    pub is_pinned: Option<bool>,
    pub is_locked: Option<bool>,
    pub category: Option<CategoryId>,
    pub moderator: bool,
    pub user: UserId,
}

/// Replies, as `reply_create` takes them: element `i` of every list is reply `i`.
pub struct NewReplies<'a> {
    pub topics: Vec<i64>,
    pub parents: Vec<Option<i64>>,
    pub authors: Vec<i64>,
    pub bodies: Vec<&'a str>,
    /// The authors' posting-limit keys.
    pub keys: Vec<&'a str>,
    pub per_minute: i32,
    /// A batch of posts: waits for no topic or parent another transaction
    /// holds (those replies come back `held`) and for no other row longer
    /// than 2 s (sql/functions/020_replies.sql).
    pub batch: bool,
}

/// What became of one reply of a `reply_create` batch.
#[derive(Debug)]
pub struct ReplyOutcome {
    /// Seconds to wait: the author is past the posting limit (0 when allowed).
    pub wait: i32,
    /// Whether the topic is locked; `None` when there is no such live topic.
    pub locked: Option<bool>,
    /// The topic's category (`None`: no such live topic).
    pub category: Option<i64>,
    /// Whether the parent, if any, is a reply of the same topic.
    pub parent_ok: bool,
    /// The stored reply (JSON), when it was written.
    pub reply: Option<String>,
    /// Left out of its batch, unwritten and uncounted: its topic or parent
    /// was locked by another transaction.
    pub held: bool,
}

pub const TOPIC_CREATE: Sql = Sql {
    name: "topic_create",
    types: &[Type::INT8, Type::INT8, Type::TEXT, Type::TEXT, Type::TEXT_ARRAY, Type::TEXT, Type::INT4],
    text: "WITH limited AS (SELECT veritable.rate_limit($6, $7, interval '1 minute') AS wait),
     topic AS (
       INSERT INTO forum_topics (category_id, author_id, title, body)
       SELECT $1, $2, $3, $4 FROM limited WHERE limited.wait = 0
       RETURNING id, category_id, author_id, title, body, body_html, created_at),
     tag AS (
       INSERT INTO forum_tags (name) SELECT unnest($5::text[]) FROM topic
       ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
       RETURNING id, name),
     tagged AS (INSERT INTO forum_topic_tags (topic_id, tag_id) SELECT topic.id, tag.id FROM topic, tag)
     SELECT (SELECT wait FROM limited),
            (SELECT json_build_object('id', id, 'category_id', category_id, 'author_id', author_id, 'title', title,
                 'body', body, 'body_html', body_html, 'created_at', created_at,
                 'tags', (SELECT coalesce(json_agg(name ORDER BY name), '[]') FROM tag))::text FROM topic)",
};

pub const TOPIC_DETAIL: Sql = Sql {
    name: "topic_detail",
    types: &[Type::INT8],
    text: "SELECT json_build_object('id', t.id,
        'category', json_build_object('id', c.id, 'slug', c.slug, 'name', c.name),
        'author', json_build_object('id', u.id, 'username', u.username, 'display_name', u.display_name),
        'title', t.title, 'body', t.body, 'body_html', t.body_html,
        'is_pinned', t.is_pinned, 'is_locked', t.is_locked,
        'reply_count', s.reply_count, 'participant_count', s.participant_count, 'view_count', t.view_count,
        'last_reply_at', s.last_reply_at, 'last_activity_at', s.last_activity_at,
        'created_at', t.created_at, 'updated_at', t.updated_at,
        'tags', to_json(t.tag_names))::text
   FROM forum_topics t JOIN forum_topic_stats s ON s.topic_id = t.id
   JOIN forum_categories c ON c.id = t.category_id JOIN users u ON u.id = t.author_id
  WHERE t.id = $1 AND NOT t.is_deleted",
};

/// The topic's author and lock state (no row: no such live topic), and the
/// changed topic when allowed: `$7` (may moderate) or the author of an open
/// topic changing only title or body.
pub const TOPIC_CHANGE: Sql = Sql {
    name: "topic_change",
    types: &[Type::INT8, Type::TEXT, Type::TEXT, Type::BOOL, Type::BOOL, Type::INT8, Type::BOOL, Type::INT8],
    text: "WITH target AS (SELECT id, author_id, is_locked FROM forum_topics WHERE id = $1 AND NOT is_deleted),
     changed AS (
       UPDATE forum_topics t SET title = coalesce($2, t.title), body = coalesce($3, t.body),
              is_pinned = coalesce($4, t.is_pinned), is_locked = coalesce($5, t.is_locked),
              category_id = coalesce($6, t.category_id), updated_at = now()
         FROM target
        WHERE t.id = target.id AND NOT t.is_deleted AND ($7 OR (target.author_id = $8 AND NOT target.is_locked))
       RETURNING json_build_object('id', t.id, 'category_id', t.category_id, 'title', t.title, 'body', t.body,
                 'body_html', t.body_html, 'is_pinned', t.is_pinned, 'is_locked', t.is_locked,
                 'updated_at', t.updated_at)::text AS topic)
     SELECT target.author_id, target.is_locked, (SELECT topic FROM changed) FROM target",
};

pub const TOPIC_VIEWS: Sql = Sql {
    name: "topic_views_flush",
    types: &[Type::INT8_ARRAY, Type::INT8_ARRAY],
    text: "WITH v AS (SELECT * FROM unnest($1::int8[], $2::int8[]) AS v(id, n)),
     locked AS (SELECT t.id FROM forum_topics t JOIN v USING (id) ORDER BY t.id FOR NO KEY UPDATE OF t)
     UPDATE forum_topics t SET view_count = t.view_count + v.n FROM v JOIN locked USING (id) WHERE t.id = v.id",
};

/// Posts replies (`veritable.post_replies`, sql/functions/020_replies.sql):
/// each counted against its author's limit, then inserted if allowed, its
/// topic live and open and its parent in the same topic, all in one
/// statement (one transaction, one commit for the batch). One row per input
/// reply, in input order: the seconds to wait (0 when allowed), the topic's
/// lock state (NULL: no such live topic), whether the parent fits, the stored
/// reply (JSON), and the topic's category.
pub const REPLY_CREATE: Sql = Sql {
    name: "reply_create",
    types: &[
        Type::INT8_ARRAY,
        Type::INT8_ARRAY,
        Type::INT8_ARRAY,
        Type::TEXT_ARRAY,
        Type::TEXT_ARRAY,
        Type::INT4,
        Type::BOOL,
    ],
    text: "SELECT wait, is_locked, parent_ok, reply, category_id, held
             FROM veritable.post_replies($1, $2, $3, $4, $5, $6, $7)",
};

/// The reply's author and its topic's lock state (no row: no such live
/// reply), and the changed reply when `$4` (may moderate) or the caller wrote
/// it and the topic is open.
pub const REPLY_EDIT: Sql = Sql {
    name: "reply_edit",
    types: &[Type::INT8, Type::TEXT, Type::INT8, Type::BOOL],
    text: "WITH target AS (
           SELECT r.id, r.author_id, t.is_locked FROM forum_replies r JOIN forum_topics t ON t.id = r.topic_id
            WHERE r.id = $1 AND NOT r.is_deleted AND NOT t.is_deleted),
         changed AS (
           UPDATE forum_replies r SET body = $2, edited_at = now(), updated_at = now() FROM target
            WHERE r.id = target.id AND NOT r.is_deleted AND ($4 OR (target.author_id = $3 AND NOT target.is_locked))
           RETURNING veritable.reply_json(r) AS reply)
         SELECT target.author_id, target.is_locked, (SELECT reply FROM changed) FROM target",
};

/// Soft delete: the reply keeps its place as a tombstone when it has children.
pub const REPLY_DELETE: Sql = Sql {
    name: "reply_delete",
    types: &[Type::INT8, Type::INT8, Type::BOOL],
    text: "WITH target AS (
           SELECT r.id, r.author_id, t.is_locked FROM forum_replies r JOIN forum_topics t ON t.id = r.topic_id
            WHERE r.id = $1 AND NOT r.is_deleted AND NOT t.is_deleted),
         changed AS (
           UPDATE forum_replies r SET is_deleted = true, updated_at = now() FROM target
            WHERE r.id = target.id AND NOT r.is_deleted AND ($3 OR (target.author_id = $2 AND NOT target.is_locked))
           RETURNING r.id)
         SELECT target.author_id, target.is_locked, (SELECT id FROM changed) FROM target",
};

pub const CATEGORIES: Sql = Sql {
    name: "categories",
    types: &[],
    text: "SELECT coalesce(json_agg(c ORDER BY c.position, c.id), '[]')::text
   FROM (SELECT id, slug, name, description, position FROM forum_categories ORDER BY position, id LIMIT 1000) c",
};

/// The page as JSON text. Each row is spelled out with `json_build_object`:
/// `to_jsonb(row)` minus the two bookkeeping columns built a jsonb, copied it
/// twice and printed it again, 0.20 ms of a 20-row page's 0.46 against 0.10
/// (pgbench, one client); the reply trees below likewise (500 rows: 6.6 ms of
/// JSON against 4.9). Key order is the columns' order; the values are the same.
pub const TOPIC_PAGE: Sql = Sql {
    name: "topic_page",
    types: &[Type::INT8, Type::TEXT, Type::INT4],
    text: "SELECT json_build_object(
        'items', coalesce(json_agg(json_build_object(
            'id', p.id, 'title', p.title, 'author_id', p.author_id, 'author_name', p.author_name,
            'author_display_name', p.author_display_name, 'category_id', p.category_id,
            'category_name', p.category_name, 'reply_count', p.reply_count, 'view_count', p.view_count,
            'participant_count', p.participant_count, 'last_reply_at', p.last_reply_at,
            'last_activity_at', p.last_activity_at, 'created_at', p.created_at, 'is_pinned', p.is_pinned,
            'is_locked', p.is_locked, 'tags', p.tags) ORDER BY p.ordinality), '[]'),
        'next_cursor', max(p.next_cursor))::text
   FROM veritable.topic_page($1, $2, $3) WITH ORDINALITY AS p",
};

/// A page of a reply tree's rows `r` (of `reply_tree` or `reply_subtree`,
/// WITH ORDINALITY) as JSON text: `items` and `has_more`.
macro_rules! reply_rows_json {
    () => {
        "json_build_object(
            'items', coalesce(json_agg(json_build_object(
                'id', r.id, 'parent_id', r.parent_id, 'depth', r.depth, 'path', r.path, 'author_id', r.author_id,
                'author_name', r.author_name, 'body_html', r.body_html, 'created_at', r.created_at,
                'child_count', r.child_count, 'children_cut', r.children_cut, 'is_deleted', r.is_deleted)
                ORDER BY r.ordinality), '[]'),
            'has_more', coalesce(bool_or(r.has_more), false))::text"
    };
}

pub const REPLY_TREE: Sql = Sql {
    name: "reply_tree",
    types: &[Type::INT8, Type::INT4, Type::INT4, Type::INT8],
    text: concat!(
        "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM forum_topics WHERE id = $1 AND NOT is_deleted) THEN NULL
        ELSE ",
        reply_rows_json!(),
        " END
   FROM veritable.reply_tree($1, $2, $3, $4) WITH ORDINALITY AS r"
    ),
};

/// One reply and what hangs below it, in the tree's shape (NULL: no such
/// reply in a live topic): a thread cut at the depth cap continued, or one
/// reply fetched when its event arrives.
pub const REPLY_SUBTREE: Sql = Sql {
    name: "reply_subtree",
    types: &[Type::INT8, Type::INT4, Type::INT4, Type::INT8],
    text: concat!(
        "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM forum_replies r JOIN forum_topics t ON t.id = r.topic_id
                                  WHERE r.id = $1 AND NOT t.is_deleted) THEN NULL
        ELSE ",
        reply_rows_json!(),
        " END
   FROM veritable.reply_subtree($1, $2, $3, $4) WITH ORDINALITY AS r"
    ),
};

impl Conn {
    /// Creates a topic unless its author is over `per_minute`: the row
    /// holds the wait (seconds, if limited) and the topic as JSON text.
    pub async fn topic_create(&self, topic: &NewTopic<'_>) -> Result<Option<Row>, tokio_postgres::Error> {
        let NewTopic { category, author, title, body, tags, key, per_minute } = topic;
        self.write(&TOPIC_CREATE, &[&category.0, &author.0, title, body, tags, key, per_minute]).await
    }

    /// The topic as JSON text, if it exists.
    pub async fn topic_detail(&self, id: TopicId) -> Result<Option<String>, tokio_postgres::Error> {
        Ok(self.opt(&TOPIC_DETAIL, &[&id.0]).await?.map(|row| row.get(0)))
    }

    pub async fn topic_change(&self, change: &TopicChange<'_>) -> Result<Option<Row>, tokio_postgres::Error> {
        let TopicChange { id, title, body, is_pinned, is_locked, category, moderator, user } = change;
        let category = category.map(|c| c.0);
        self.write(&TOPIC_CHANGE, &[&id.0, title, body, is_pinned, is_locked, &category, moderator, &user.0]).await
    }

    /// Adds `counts[i]` views to topic `ids[i]`.
    pub async fn topic_views_flush(&self, ids: &[i64], counts: &[i64]) -> Result<Option<Row>, tokio_postgres::Error> {
        self.write(&TOPIC_VIEWS, &[&ids, &counts]).await
    }

    /// Creates each reply whose author is within `per_minute`, whose topic
    /// is live and open and whose parent fits, in one statement; one outcome
    /// per reply, in order.
    pub async fn reply_create(&self, replies: &NewReplies<'_>) -> Result<Vec<ReplyOutcome>, tokio_postgres::Error> {
        let NewReplies { topics, parents, authors, bodies, keys, per_minute, batch } = replies;
        let rows = self.write_rows(&REPLY_CREATE, &[topics, parents, authors, bodies, keys, per_minute, batch]).await?;
        Ok(rows
            .iter()
            .map(|row| ReplyOutcome {
                wait: row.get(0),
                locked: row.get(1),
                category: row.get(4),
                parent_ok: row.get(2),
                reply: row.get(3),
                held: row.get(5),
            })
            .collect())
    }

    pub async fn reply_edit(
        &self,
        id: ReplyId,
        body: &str,
        user: UserId,
        moderator: bool,
    ) -> Result<Option<Row>, tokio_postgres::Error> {
        self.write(&REPLY_EDIT, &[&id.0, &body, &user.0, &moderator]).await
    }

    pub async fn reply_delete(
        &self,
        id: ReplyId,
        user: UserId,
        moderator: bool,
    ) -> Result<Option<Row>, tokio_postgres::Error> {
        self.write(&REPLY_DELETE, &[&id.0, &user.0, &moderator]).await
    }

    /// `{"items": [...]}`'s array of categories, as JSON text.
    pub async fn categories(&self) -> Result<String, AppError> {
        Ok(self.one(&CATEGORIES, &[]).await?.get(0))
    }

    /// One page of topics as JSON text (`items`, `next_cursor`).
    pub async fn topic_page(
        &self,
        category: Option<CategoryId>,
        cursor: Option<&str>,
        limit: i32,
    ) -> Result<String, AppError> {
        let category = category.map(|c| c.0);
        Ok(self.one(&TOPIC_PAGE, &[&category, &cursor, &limit]).await?.get(0))
    }

    /// One page of a topic's reply tree as JSON text; None when the topic
    /// does not exist.
    pub async fn reply_tree(
        &self,
        topic: TopicId,
        depth: Option<i32>,
        limit: Option<i32>,
        after: Option<ReplyId>,
    ) -> Result<Option<String>, tokio_postgres::Error> {
        let after = after.map(|a| a.0);
        Ok(self.opt(&REPLY_TREE, &[&topic.0, &depth, &limit, &after]).await?.and_then(|row| row.get(0)))
    }

    /// One page of a reply's subtree as JSON text; None when the reply does
    /// not exist in a live topic.
    pub async fn reply_subtree(
        &self,
        reply: ReplyId,
        depth: Option<i32>,
        limit: Option<i32>,
        after: Option<ReplyId>,
    ) -> Result<Option<String>, tokio_postgres::Error> {
        let after = after.map(|a| a.0);
        Ok(self.opt(&REPLY_SUBTREE, &[&reply.0, &depth, &limit, &after]).await?.and_then(|row| row.get(0)))
    }
}

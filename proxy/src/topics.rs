//! Topics: create, read (with batched view counts), edit and moderate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::Response;
use prometheus::IntCounter;
use serde::Deserialize;
use tokio::sync::Notify;
use tokio_postgres::types::Type;
use tokio_util::sync::CancellationToken;

use crate::auth::judge;
use crate::auth::{CurrentUser, Writer};
use crate::db::{Db, Sql};
use crate::error::refused;
use crate::params::Body;
use crate::params::{parse_id, require_text};
use crate::respond::{created, ok_json};
use crate::server::AppState;
use crate::{AppError, AppResult};

/// At most five tags per topic, each like `rust` or `async-io`.
const MAX_TAGS: usize = 5;
const MAX_TITLE_CHARS: usize = 300;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTopic {
    category_id: i64,
    title: String,
    body: String,
    #[serde(default)]
    tags: Vec<String>,
}

/// Every field optional; `title` and `body` for the author or a moderator,
/// the rest for moderators only.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicChange {
    title: Option<String>,
    body: Option<String>,
    is_pinned: Option<bool>,
    is_locked: Option<bool>,
    category_id: Option<i64>,
}

fn check_title(title: &str) -> AppResult<()> {
    require_text("title", title)?;
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(AppError::Unprocessable {
            field: "title",
            message: format!("at most {MAX_TITLE_CHARS} characters"),
        });
    }
    Ok(())
}

/// Lower-cased, sorted and deduplicated (a fixed order, so two writers
/// never lock the same tag rows in opposite orders).
fn normalize_tags(tags: Vec<String>) -> AppResult<Vec<String>> {
    let mut tags: Vec<String> = tags.into_iter().map(|t| t.trim().to_lowercase()).collect();
    tags.sort();
    tags.dedup();
    if tags.len() > MAX_TAGS {
        return Err(AppError::Unprocessable { field: "tags", message: format!("at most {MAX_TAGS} tags") });
    }
    let well_formed = |t: &String| {
        (1..=32).contains(&t.len())
            && t.split('-')
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
    };
    if !tags.iter().all(well_formed) {
        return Err(AppError::Unprocessable {
            field: "tags",
            message: "tags are 1 to 32 of a-z, 0-9 and inner dashes".into(),
        });
    }
    Ok(tags)
}

const CREATE: Sql = Sql {
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

/// `POST /api/v1/forums/topics` `{"category_id", "title", "body", "tags"?}`
/// → 201; 422 for an unknown category or bad fields, 429 past the posting limit.
#[utoipa::path(post, path = "/api/v1/forums/topics", tag = "forums", request_body = NewTopic, responses((status = 201, description = "the topic", body = Object), (status = 401, description = "no valid session", body = crate::error::ErrorBody), (status = 422, description = "invalid body", body = crate::error::ErrorBody), (status = 429, description = "rate limited (Retry-After)", body = crate::error::ErrorBody)), security(("bearer" = []), ("cookie" = [])))]
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Body(topic): Body<NewTopic>,
) -> AppResult<Response> {
    check_title(&topic.title)?;
    require_text("body", &topic.body)?;
    let tags = normalize_tags(topic.tags)?;
    let key = state.post_limit.key(user.session.user_id);
    let row = state
        .db
        .get()
        .await?
        .write(
            &CREATE,
            &[
                &topic.category_id,
                &user.session.user_id,
                &topic.title,
                &topic.body,
                &tags,
                &key,
                &state.post_limit.per_minute,
            ],
        )
        .await
        .map_err(|e| refused(e, "category_id"))?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("topic_create returned no row")))?;
    crate::limits::check_wait(row.get(0))?;
    row.get::<_, Option<String>>(1)
        .map(created)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("topic_create inserted nothing")))
}

const DETAIL: Sql = Sql {
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

/// `GET /api/v1/forums/topics/{id}`: the topic with its stats and tags. The
/// view is counted in memory and written in batches ([`Views`]), so reading
/// a topic never writes; `view_count` trails by up to one flush interval.
#[utoipa::path(get, path = "/api/v1/forums/topics/{id}", tag = "forums", params(("id" = i64, Path, description = "topic id")), responses((status = 200, description = "the topic with its stats and tags; counts a view (batched)", body = Object), (status = 400, description = "bad parameter", body = crate::error::ErrorBody), (status = 404, description = "not found", body = crate::error::ErrorBody)))]
pub async fn detail(State(state): State<AppState>, Path(id): Path<String>) -> AppResult<Response> {
    let id = parse_id(&id, "topic")?;
    let row = state.db.get().await?.opt(&DETAIL, &[&id]).await?.ok_or(AppError::NotFound)?;
    state.views.count(id);
    Ok(ok_json(row.get::<_, String>(0)))
}

/// The topic's author and lock state (no row: no such live topic), and the
/// changed topic when allowed: `$7` (may moderate) or the author of an open
/// topic changing only title or body.
const CHANGE: Sql = Sql {
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

/// `PATCH /api/v1/forums/topics/{id}`: edit (`title`, `body`: the author
/// while open, or a moderator), pin, lock, move (`is_pinned`, `is_locked`,
/// `category_id`: moderators only, else 403).
#[utoipa::path(patch, path = "/api/v1/forums/topics/{id}", tag = "forums", params(("id" = i64, Path, description = "topic id")), request_body = TopicChange, responses((status = 200, description = "the changed topic", body = Object), (status = 400, description = "bad parameter", body = crate::error::ErrorBody), (status = 401, description = "no valid session", body = crate::error::ErrorBody), (status = 403, description = "not allowed", body = crate::error::ErrorBody), (status = 404, description = "not found", body = crate::error::ErrorBody), (status = 409, description = "conflict", body = crate::error::ErrorBody), (status = 422, description = "invalid body", body = crate::error::ErrorBody), (status = 429, description = "rate limited (Retry-After)", body = crate::error::ErrorBody)), security(("bearer" = []), ("cookie" = [])))]
pub async fn change(
    State(state): State<AppState>,
    Writer(user): Writer,
    Path(id): Path<String>,
    Body(change): Body<TopicChange>,
) -> AppResult<Response> {
    let id = parse_id(&id, "topic")?;
    let moderating = change.is_pinned.is_some() || change.is_locked.is_some() || change.category_id.is_some();
    if moderating && !user.session.may_moderate() {
        return Err(AppError::Forbidden("only moderators may pin, lock or move topics"));
    }
    if !moderating && change.title.is_none() && change.body.is_none() {
        return Err(AppError::Unprocessable { field: "body", message: "nothing to change".into() });
    }
    if let Some(title) = &change.title {
        check_title(title)?;
    }
    if let Some(body) = &change.body {
        require_text("body", body)?;
    }
    let moderator = user.session.may_moderate();
    let row = state
        .db
        .get()
        .await?
        .write(
            &CHANGE,
            &[
                &id,
                &change.title,
                &change.body,
                &change.is_pinned,
                &change.is_locked,
                &change.category_id,
                &moderator,
                &user.session.user_id,
            ],
        )
        .await
        .map_err(|e| refused(e, "category_id"))?
        .ok_or(AppError::NotFound)?;
    judge(&user, row.get(0), row.get(1), row.get::<_, Option<String>>(2)).map(ok_json)
}

/// Topic views counted in memory and added to `forum_topics.view_count` in
/// one statement per flush. Bounded: at most `capacity` distinct topics
/// wait; a view of a further topic while full is dropped (and counted in
/// `veritable_topic_views_dropped_total`) and wakes the flusher early. A
/// failed flush puts its counts back, within the same bound.
pub struct Views {
    pending: Mutex<HashMap<i64, i64>>,
    capacity: usize,
    wake: Notify,
    flushed: IntCounter,
    dropped: IntCounter,
}

const FLUSH: Sql = Sql {
    name: "topic_views_flush",
    types: &[Type::INT8_ARRAY, Type::INT8_ARRAY],
    text: "WITH v AS (SELECT * FROM unnest($1::int8[], $2::int8[]) AS v(id, n)),
     locked AS (SELECT t.id FROM forum_topics t JOIN v USING (id) ORDER BY t.id FOR NO KEY UPDATE OF t)
     UPDATE forum_topics t SET view_count = t.view_count + v.n FROM v JOIN locked USING (id) WHERE t.id = v.id",
};

impl Views {
    pub fn new(capacity: usize, flushed: IntCounter, dropped: IntCounter) -> Self {
        Self { pending: Mutex::new(HashMap::new()), capacity, wake: Notify::new(), flushed, dropped }
    }

    pub fn count(&self, topic: i64) {
        self.add(topic, 1);
    }

    fn add(&self, topic: i64, n: i64) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = pending.get_mut(&topic) {
            *count += n;
        } else if pending.len() < self.capacity {
            pending.insert(topic, n);
            if pending.len() == self.capacity {
                self.wake.notify_one();
            }
        } else {
            self.dropped.inc_by(u64::try_from(n).unwrap_or(0));
            self.wake.notify_one();
        }
    }

    /// Views waiting to be written.
    pub fn pending(&self) -> usize {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    async fn flush(&self, db: &Db) {
        let batch = std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        if batch.is_empty() {
            return;
        }
        let (ids, counts): (Vec<i64>, Vec<i64>) = batch.iter().map(|(id, n)| (*id, *n)).unzip();
        let outcome = match db.get().await {
            Ok(conn) => conn.write(&FLUSH, &[&ids, &counts]).await.map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        match outcome {
            Ok(_) => self.flushed.inc_by(counts.iter().map(|n| u64::try_from(*n).unwrap_or(0)).sum()),
            Err(error) => {
                tracing::warn!(%error, topics = ids.len(), "could not write topic views; keeping them for the next flush");
                for (id, n) in batch {
                    self.add(id, n);
                }
            }
        }
    }

    /// Flushes every `every` (or sooner when full) until `cancel`, then once more.
    pub async fn run(self: Arc<Self>, db: Db, every: Duration, cancel: CancellationToken) {
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(every) => {}
                () = self.wake.notified() => {}
            }
            self.flush(&db).await;
        }
        self.flush(&db).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_batch_is_bounded_and_counts_what_it_drops() {
        let (flushed, dropped) =
            (IntCounter::new("f", "f").expect("counter"), IntCounter::new("d", "d").expect("counter"));
        let views = Views::new(2, flushed, dropped.clone());
        for topic in [1, 1, 2, 2, 2] {
            views.count(topic);
        }
        assert_eq!(views.pending(), 2);
        views.count(3);
        views.count(3);
        assert_eq!(
            (views.pending(), dropped.get()),
            (2, 2),
            "a third topic does not fit; its views are counted as dropped"
        );
        views.count(1);
        assert_eq!(dropped.get(), 2, "topics already waiting still count");
    }
}

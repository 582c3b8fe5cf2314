//! Topics: the page of a category (`veritable.topic_page`, pinned first, then
//! by last activity), create, read (with batched view counts), edit and
//! moderate.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use veritable_core::cursor::TopicKey;
use veritable_core::rules;

use crate::cache::{Shows, Wrote};
use crate::http::error::{ErrorBody, refused};
use crate::http::extract::{
    Body, CurrentUser, Params, Writer, judge, page_size, parse_id, presented_hash, require_text,
};
use crate::http::respond::{created, ok_json};
use crate::store::forums;
use crate::store::ids::{CategoryId, TopicId, UserId};
use crate::{AppError, AppResult, AppState};

/// At most five tags per topic, each like `rust` or `async-io`.
const MAX_TAGS: usize = rules::TAGS_PER_TOPIC_MAX;
const MAX_TITLE_CHARS: usize = rules::TITLE_MAX_CHARS;

#[derive(Debug, Deserialize)]
pub struct TopicsQuery {
    category: Option<i64>,
    cursor: Option<String>,
    limit: Option<i32>,
}

/// `GET /api/v1/forums/topics?category=&cursor=&limit=`: pinned first, then
/// by last activity; pass `next_cursor` back for the next page.
#[utoipa::path(
    get,
    path = "/api/v1/forums/topics",
    operation_id = "topics",
    tag = "forums",
    params(
        ("category" = Option<i64>, Query, description = "category id; all when absent"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("limit" = Option<i32>, Query, description = "page size, 1 to 100 (20)"),
    ),
    responses(
        (status = 200, description = "items (pinned first, then by last activity), next_cursor", body = Object),
        (status = 400, description = "bad parameter", body = ErrorBody),
        (status = 503, description = "overloaded or database unavailable (Retry-After)", body = ErrorBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(query): Params<TopicsQuery>,
) -> AppResult<Response> {
    let limit = page_size(query.limit)?;
    if let Some(cursor) = &query.cursor {
        TopicKey::decode(cursor).map_err(|e| AppError::invalid("cursor", e.to_string()))?;
    }
    let key = format!("topics:{:?}:{}:{limit}", query.category, query.cursor.as_deref().unwrap_or(""));
    let reader = presented_hash(&headers);
    let body = state
        .responses
        .get_or_load_for(reader.as_ref(), Shows::List(query.category), &headers, key, async {
            state.db.get().await?.topic_page(query.category.map(CategoryId), query.cursor.as_deref(), limit).await
        })
        .await?;
    Ok(body.respond(&headers))
}

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
    let well_formed = |t: &String| rules::is_slug(t, rules::TAG_MAX_CHARS);
    if !tags.iter().all(well_formed) {
        return Err(AppError::Unprocessable {
            field: "tags",
            message: "tags are 1 to 32 of a-z, 0-9 and inner dashes".into(),
        });
    }
    Ok(tags)
}

/// `POST /api/v1/forums/topics` `{"category_id", "title", "body", "tags"?}`
/// → 201; 422 for an unknown category or bad fields, 429 past the posting limit.
#[utoipa::path(
    post,
    path = "/api/v1/forums/topics",
    tag = "forums",
    request_body = NewTopic,
    responses(
        (status = 201, description = "the topic", body = Object),
        (status = 401, description = "no valid session", body = ErrorBody),
        (status = 422, description = "invalid body", body = ErrorBody),
        (status = 429, description = "rate limited (Retry-After)", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Body(topic): Body<NewTopic>,
) -> AppResult<Response> {
    check_title(&topic.title)?;
    require_text("body", &topic.body)?;
    let tags = normalize_tags(topic.tags)?;
    let topic_category = topic.category_id;
    let key = state.post_limit.key(user.session.user_id);
    let row = state
        .db
        .get()
        .await?
        .topic_create(&forums::NewTopic {
            category: CategoryId(topic.category_id),
            author: UserId(user.session.user_id),
            title: &topic.title,
            body: &topic.body,
            tags: &tags,
            key: &key,
            per_minute: state.post_limit.per_minute,
        })
        .await
        .map_err(|e| refused(e, "category_id"))?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("topic_create returned no row")))?;
    crate::limits::check_wait(row.get(0))?;
    let topic = row
        .get::<_, Option<String>>(1)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("topic_create inserted nothing")))?;
    state.responses.wrote(&user.token_hash, Wrote { category: Some(topic_category), topic: None });
    Ok(created(topic))
}

/// `GET /api/v1/forums/topics/{id}`: the topic with its stats and tags. The
/// view is counted in memory and written in batches ([`crate::store::views::Views`]), so reading
/// a topic never writes; `view_count` trails by up to one flush interval.
#[utoipa::path(
    get,
    path = "/api/v1/forums/topics/{id}",
    tag = "forums",
    params(("id" = i64, Path, description = "topic id")),
    responses(
        (status = 200, description = "the topic with its stats and tags; counts a view (batched)", body = Object),
        (status = 400, description = "bad parameter", body = ErrorBody),
        (status = 404, description = "not found", body = ErrorBody),
    ),
)]
pub async fn detail(State(state): State<AppState>, Path(id): Path<String>) -> AppResult<Response> {
    let id = parse_id(&id, "topic")?;
    let topic = state.db.read().await?.topic_detail(TopicId(id)).await?.ok_or(AppError::NotFound)?;
    state.views.count(id);
    Ok(ok_json(topic))
}

/// `PATCH /api/v1/forums/topics/{id}`: edit (`title`, `body`: the author
/// while open, or a moderator), pin, lock, move (`is_pinned`, `is_locked`,
/// `category_id`: moderators only, else 403).
#[utoipa::path(
    patch,
    path = "/api/v1/forums/topics/{id}",
    tag = "forums",
    params(("id" = i64, Path, description = "topic id")),
    request_body = TopicChange,
    responses(
        (status = 200, description = "the changed topic", body = Object),
        (status = 400, description = "bad parameter", body = ErrorBody),
        (status = 401, description = "no valid session", body = ErrorBody),
        (status = 403, description = "not allowed", body = ErrorBody),
        (status = 404, description = "not found", body = ErrorBody),
        (status = 409, description = "conflict", body = ErrorBody),
        (status = 422, description = "invalid body", body = ErrorBody),
        (status = 429, description = "rate limited (Retry-After)", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
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
        .topic_change(&forums::TopicChange {
            id: TopicId(id),
            title: change.title.as_deref(),
            body: change.body.as_deref(),
            is_pinned: change.is_pinned,
            is_locked: change.is_locked,
            category: change.category_id.map(CategoryId),
            moderator,
            user: UserId(user.session.user_id),
        })
        .await
        .map_err(|e| refused(e, "category_id"))?
        .ok_or(AppError::NotFound)?;
    judge(&user, row.get(0), row.get(1), row.get::<_, Option<String>>(2)).map(ok_json)
}

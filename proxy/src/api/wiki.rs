//! The wiki: pages by slug, immutable revisions, optimistic concurrency.
//!
//! `PUT /wiki/pages/{slug}` names the revision it was based on
//! (`base_revision`, 0 for a new page). The page row is locked, the base is
//! compared with the current revision, and the new revision is written, in
//! one statement; a stale base gets 409 with the current revision, so the
//! client can merge and retry.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use veritable_core::rules;

use crate::http::error::{ErrorBody, refused};
use crate::http::extract::{Body, Params, Writer, numeric_cursor, page_size, require_text};
use crate::http::respond::{created, ok_json};
use crate::store::wiki::WikiSave;
use crate::{AppError, AppResult, AppState};

const MAX_COMMENT_CHARS: usize = rules::WIKI_COMMENT_MAX_CHARS;

fn check_slug(slug: &str) -> AppResult<()> {
    if !rules::is_slug(slug, rules::WIKI_SLUG_MAX_CHARS) {
        return Err(AppError::invalid("slug", "a slug is a-z, 0-9 and inner dashes, at most 200 characters"));
    }
    Ok(())
}

#[derive(Deserialize)]
pub struct ListQuery {
    cursor: Option<String>,
    limit: Option<i32>,
}

/// `GET /api/v1/wiki/pages?cursor=&limit=`: pages by slug.
#[utoipa::path(
    get,
    path = "/api/v1/wiki/pages",
    tag = "wiki",
    params(
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("limit" = Option<i32>, Query, description = "page size, 1 to 100 (20)"),
    ),
    responses(
        (status = 200, description = "items by slug, next_cursor", body = Object),
        (status = 400, description = "bad parameter", body = ErrorBody),
    ),
)]
pub async fn list(State(state): State<AppState>, Params(query): Params<ListQuery>) -> AppResult<Response> {
    let limit = page_size(query.limit)?;
    if let Some(cursor) = &query.cursor {
        check_slug(cursor).map_err(|_| AppError::invalid("cursor", "not a cursor from this list"))?;
    }
    Ok(ok_json(state.db.read().await?.wiki_pages(query.cursor.as_deref(), limit).await?))
}

/// The read cache's key of a wiki page: its realtime room, so the page's
/// events name the entry they make stale.
fn cache_key(slug: &str) -> String {
    format!("wiki:{slug}")
}

/// `GET /api/v1/wiki/pages/{slug}`: the page and its current revision
/// (through the read cache).
#[utoipa::path(
    get,
    path = "/api/v1/wiki/pages/{slug}",
    tag = "wiki",
    params(("slug" = String, Path, description = "page slug")),
    responses(
        (status = 200, description = "the page and its current revision", body = Object),
        (status = 400, description = "bad parameter", body = ErrorBody),
        (status = 404, description = "not found", body = ErrorBody),
    ),
)]
pub async fn page(State(state): State<AppState>, headers: HeaderMap, Path(slug): Path<String>) -> AppResult<Response> {
    check_slug(&slug)?;
    let body = state
        .responses
        .get_or_load_page(&headers, cache_key(&slug), async {
            state.db.get().await?.wiki_page(&slug).await?.ok_or(AppError::NotFound)
        })
        .await?;
    Ok(body.respond(&headers))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Edit {
    title: String,
    body: String,
    /// The revision this edit started from; 0 to create the page.
    base_revision: i32,
    #[serde(default)]
    comment: String,
}

/// `PUT /api/v1/wiki/pages/{slug}` `{"title", "body", "base_revision", "comment"?}`
/// → 201 for a new page, 200 for a new revision; 409 `stale_revision` with
/// the current page when `base_revision` is not the current one.
#[utoipa::path(
    put,
    path = "/api/v1/wiki/pages/{slug}",
    tag = "wiki",
    params(("slug" = String, Path, description = "page slug")),
    request_body = Edit,
    responses(
        (status = 200, description = "the new revision", body = Object),
        (status = 201, description = "the new page", body = Object),
        (status = 400, description = "bad parameter", body = ErrorBody),
        (status = 401, description = "no valid session", body = ErrorBody),
        (status = 409, description = "stale base_revision: the current page is in `current`", body = ErrorBody),
        (status = 422, description = "invalid body", body = ErrorBody),
        (status = 429, description = "rate limited (Retry-After)", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
pub async fn save(
    State(state): State<AppState>,
    Writer(user): Writer,
    Path(slug): Path<String>,
    Body(edit): Body<Edit>,
) -> AppResult<Response> {
    check_slug(&slug)?;
    require_text("title", &edit.title)?;
    require_text("body", &edit.body)?;
    if edit.title.chars().count() > 300 {
        return Err(AppError::Unprocessable { field: "title", message: "at most 300 characters".into() });
    }
    if edit.comment.chars().count() > MAX_COMMENT_CHARS {
        return Err(AppError::Unprocessable {
            field: "comment",
            message: format!("at most {MAX_COMMENT_CHARS} characters"),
        });
    }
    // The save writes revision base + 1, which must fit the int4 column.
    if edit.base_revision < 0 || edit.base_revision == i32::MAX {
        return Err(AppError::Unprocessable {
            field: "base_revision",
            message: "0 for a new page, else a revision number".into(),
        });
    }
    let conn = state.db.get().await?;
    let row = conn
        .wiki_save(&WikiSave {
            slug: &slug,
            title: &edit.title,
            author: user.session.user_id,
            base_revision: edit.base_revision,
            body: &edit.body,
            comment: &edit.comment,
        })
        .await
        .map_err(|e| refused(e, "slug"))?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("wiki_save returned no row")))?;
    if let Some(saved) = row.get::<_, Option<String>>(1) {
        // This proxy at once; the others when the revision's event reaches them.
        state.responses.page_changed(&cache_key(&slug)).await;
        return Ok(if edit.base_revision == 0 { created(saved) } else { ok_json(saved) });
    }
    // Stale: someone saved first (or the page does not exist yet, or exists
    // already when creating). Answer with what is current now.
    match conn.wiki_page(&slug).await? {
        Some(current) => Err(AppError::StaleRevision { current }),
        None => Err(AppError::Conflict {
            field: "base_revision",
            message: "no such page: create it with base_revision 0".into(),
        }),
    }
}

/// `GET /api/v1/wiki/pages/{slug}/revisions?cursor=&limit=`: newest first,
/// without bodies.
#[utoipa::path(
    get,
    path = "/api/v1/wiki/pages/{slug}/revisions",
    tag = "wiki",
    params(
        ("slug" = String, Path, description = "page slug"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("limit" = Option<i32>, Query, description = "page size, 1 to 100 (20)"),
    ),
    responses(
        (status = 200, description = "items newest first, next_cursor", body = Object),
        (status = 400, description = "bad parameter", body = ErrorBody),
        (status = 404, description = "not found", body = ErrorBody),
    ),
)]
pub async fn revisions(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Params(query): Params<ListQuery>,
) -> AppResult<Response> {
    check_slug(&slug)?;
    let limit = page_size(query.limit)?;
    let cursor = numeric_cursor(query.cursor.as_deref())?;
    state.db.read().await?.wiki_revisions(&slug, cursor, limit).await?.map(ok_json).ok_or(AppError::NotFound)
}

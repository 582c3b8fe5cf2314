//! The wiki: pages by slug, immutable revisions, optimistic concurrency.
//!
//! `PUT /wiki/pages/{slug}` names the revision it was based on
//! (`base_revision`, 0 for a new page). The page row is locked, the base is
//! compared with the current revision, and the new revision is written, in
//! one statement; a stale base gets 409 with the current revision, so the
//! client can merge and retry.

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use tokio_postgres::types::Type;

use crate::auth::Writer;
use crate::db::Sql;
use crate::error::refused;
use crate::params::require_text;
use crate::params::{Body, Params, page_size};
use crate::respond::{created, ok_json};
use crate::server::AppState;
use crate::{AppError, AppResult};

const MAX_COMMENT_CHARS: usize = 500;

fn check_slug(slug: &str) -> AppResult<()> {
    let well_formed = slug.len() <= 200
        && slug
            .split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    if !well_formed {
        return Err(AppError::invalid("slug", "a slug is a-z, 0-9 and inner dashes, at most 200 characters"));
    }
    Ok(())
}

#[derive(Deserialize)]
pub struct ListQuery {
    cursor: Option<String>,
    limit: Option<i32>,
}

const LIST: Sql = Sql {
    name: "wiki_pages",
    types: &[Type::TEXT, Type::INT4],
    text: concat!(
        "SELECT ",
        crate::page_json!("$2"),
        "
   FROM (SELECT row_number() OVER (ORDER BY slug) AS n, slug AS key,
                json_build_object('slug', slug, 'title', title, 'current_revision', current_revision,
                                  'updated_at', updated_at) AS item
           FROM wiki_pages WHERE NOT is_deleted AND slug > coalesce($1, '')
          ORDER BY slug LIMIT $2 + 1) p"
    ),
};

/// `GET /api/v1/wiki/pages?cursor=&limit=`: pages by slug.
#[utoipa::path(get, path = "/api/v1/wiki/pages", tag = "wiki", params(("cursor" = Option<String>, Query, description = "next_cursor of the previous page"), ("limit" = Option<i32>, Query, description = "page size, 1 to 100 (20)")), responses((status = 200, description = "items by slug, next_cursor", body = Object), (status = 400, description = "bad parameter", body = crate::error::ErrorBody)))]
pub async fn list(State(state): State<AppState>, Params(query): Params<ListQuery>) -> AppResult<Response> {
    let limit = page_size(query.limit)?;
    if let Some(cursor) = &query.cursor {
        check_slug(cursor).map_err(|_| AppError::invalid("cursor", "not a cursor from this list"))?;
    }
    let row = state.db.get().await?.one(&LIST, &[&query.cursor, &limit]).await?;
    Ok(ok_json(row.get::<_, String>(0)))
}

/// The page with its current revision, as GET and a 409 return it.
macro_rules! page_json {
    () => {
        "SELECT json_build_object('slug', p.slug, 'title', p.title, 'current_revision', p.current_revision,
            'created_at', p.created_at, 'updated_at', p.updated_at,
            'revision', (SELECT json_build_object('number', r.revision_number, 'author_id', r.author_id,
                             'author', u.username, 'body', r.body, 'body_html', r.body_html,
                             'comment', r.comment, 'created_at', r.created_at)
                           FROM wiki_revisions r JOIN users u ON u.id = r.author_id
                          WHERE r.page_id = p.id AND r.revision_number = p.current_revision))::text
           FROM wiki_pages p WHERE p.slug = $1 AND NOT p.is_deleted"
    };
}

const PAGE: Sql = Sql { name: "wiki_page", types: &[Type::TEXT], text: page_json!() };

/// The read cache's key of a wiki page: its realtime room, so the page's
/// events name the entry they make stale.
fn cache_key(slug: &str) -> String {
    format!("wiki:{slug}")
}

/// `GET /api/v1/wiki/pages/{slug}`: the page and its current revision
/// (through the read cache).
#[utoipa::path(get, path = "/api/v1/wiki/pages/{slug}", tag = "wiki", params(("slug" = String, Path, description = "page slug")), responses((status = 200, description = "the page and its current revision", body = Object), (status = 400, description = "bad parameter", body = crate::error::ErrorBody), (status = 404, description = "not found", body = crate::error::ErrorBody)))]
pub async fn page(State(state): State<AppState>, Path(slug): Path<String>) -> AppResult<Response> {
    check_slug(&slug)?;
    let body = state
        .responses
        .get_or_load(cache_key(&slug), async {
            let row = state.db.get().await?.opt(&PAGE, &[&slug]).await?.ok_or(AppError::NotFound)?;
            Ok(row.get::<_, String>(0))
        })
        .await?;
    Ok(ok_json(body))
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

/// Locks the page (or creates it when the base is 0), and writes revision
/// base + 1 only when the base is still current. Returns the current revision
/// seen (NULL: no page) and the new revision.
const SAVE: Sql = Sql {
    name: "wiki_save",
    types: &[Type::TEXT, Type::TEXT, Type::INT8, Type::INT4, Type::TEXT, Type::TEXT],
    text:
        "WITH existing AS (SELECT id, current_revision FROM wiki_pages WHERE slug = $1 AND NOT is_deleted FOR UPDATE),
     made AS (
       INSERT INTO wiki_pages (slug, title, author_id)
       SELECT $1, $2, $3 WHERE $4 = 0 AND NOT EXISTS (SELECT 1 FROM existing)
       ON CONFLICT (slug) DO NOTHING
       RETURNING id, current_revision),
     page AS (SELECT * FROM existing UNION ALL SELECT * FROM made),
     saved AS (
       INSERT INTO wiki_revisions (page_id, revision_number, author_id, title, body, comment)
       SELECT id, $4 + 1, $3, $2, $5, $6 FROM page WHERE current_revision = $4
       RETURNING json_build_object('slug', $1::text, 'title', title, 'current_revision', revision_number,
                 'revision', json_build_object('number', revision_number, 'author_id', author_id, 'body', body,
                     'body_html', body_html, 'comment', comment, 'created_at', created_at))::text AS page)
     SELECT (SELECT current_revision FROM page), (SELECT page FROM saved)",
};

/// `PUT /api/v1/wiki/pages/{slug}` `{"title", "body", "base_revision", "comment"?}`
/// → 201 for a new page, 200 for a new revision; 409 `stale_revision` with
/// the current page when `base_revision` is not the current one.
#[utoipa::path(put, path = "/api/v1/wiki/pages/{slug}", tag = "wiki", params(("slug" = String, Path, description = "page slug")), request_body = Edit, responses((status = 200, description = "the new revision", body = Object), (status = 201, description = "the new page", body = Object), (status = 400, description = "bad parameter", body = crate::error::ErrorBody), (status = 401, description = "no valid session", body = crate::error::ErrorBody), (status = 409, description = "stale base_revision: the current page is in `current`", body = crate::error::ErrorBody), (status = 422, description = "invalid body", body = crate::error::ErrorBody), (status = 429, description = "rate limited (Retry-After)", body = crate::error::ErrorBody)), security(("bearer" = []), ("cookie" = [])))]
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
    if edit.base_revision < 0 {
        return Err(AppError::Unprocessable {
            field: "base_revision",
            message: "0 for a new page, else a revision number".into(),
        });
    }
    let conn = state.db.get().await?;
    let row = conn
        .write(&SAVE, &[&slug, &edit.title, &user.session.user_id, &edit.base_revision, &edit.body, &edit.comment])
        .await
        .map_err(|e| refused(e, "slug"))?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("wiki_save returned no row")))?;
    if let Some(saved) = row.get::<_, Option<String>>(1) {
        // This proxy at once; the others when the revision's event reaches them.
        state.responses.invalidate(&cache_key(&slug)).await;
        return Ok(if edit.base_revision == 0 { created(saved) } else { ok_json(saved) });
    }
    // Stale: someone saved first (or the page does not exist yet, or exists
    // already when creating). Answer with what is current now.
    match conn.opt(&PAGE, &[&slug]).await? {
        Some(current) => Err(AppError::StaleRevision { current: current.get(0) }),
        None => Err(AppError::Conflict {
            field: "base_revision",
            message: "no such page: create it with base_revision 0".into(),
        }),
    }
}

const REVISIONS: Sql = Sql {
    name: "wiki_revisions",
    types: &[Type::TEXT, Type::INT8, Type::INT4],
    text: concat!(
        "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM wiki_pages WHERE slug = $1 AND NOT is_deleted) THEN NULL
        ELSE ",
        crate::page_json!("$3"),
        " END
   FROM (SELECT row_number() OVER (ORDER BY v.revision_number DESC) AS n, v.revision_number::text AS key,
                json_build_object('number', v.revision_number, 'title', v.title, 'author_id', v.author_id,
                                  'author', u.username, 'comment', v.comment, 'created_at', v.created_at) AS item
           FROM wiki_pages p JOIN wiki_revisions v ON v.page_id = p.id JOIN users u ON u.id = v.author_id
          WHERE p.slug = $1 AND NOT p.is_deleted AND v.revision_number < coalesce($2, 2147483647)
          ORDER BY v.revision_number DESC LIMIT $3 + 1) p"
    ),
};

/// `GET /api/v1/wiki/pages/{slug}/revisions?cursor=&limit=`: newest first,
/// without bodies.
#[utoipa::path(get, path = "/api/v1/wiki/pages/{slug}/revisions", tag = "wiki", params(("slug" = String, Path, description = "page slug"), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"), ("limit" = Option<i32>, Query, description = "page size, 1 to 100 (20)")), responses((status = 200, description = "items newest first, next_cursor", body = Object), (status = 400, description = "bad parameter", body = crate::error::ErrorBody), (status = 404, description = "not found", body = crate::error::ErrorBody)))]
pub async fn revisions(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Params(query): Params<ListQuery>,
) -> AppResult<Response> {
    check_slug(&slug)?;
    let limit = page_size(query.limit)?;
    let cursor = crate::params::numeric_cursor(query.cursor.as_deref())?;
    let row = state.db.get().await?.one(&REVISIONS, &[&slug, &cursor, &limit]).await?;
    row.get::<_, Option<String>>(0).map(ok_json).ok_or(AppError::NotFound)
}

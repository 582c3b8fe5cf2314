//! Writing replies. One statement per reply (the triggers do the rest in the
//! same transaction, in their fixed lock order); serialization failures and
//! deadlocks are retried up to three times with jitter.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde::Deserialize;
use tokio_postgres::error::SqlState;

use crate::auth::CurrentUser;
use crate::params::Body;
use crate::server::AppState;
use crate::{AppError, AppResult};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewReply {
    body: String,
    parent_id: Option<i64>,
}

const INSERT: &str = "INSERT INTO forum_replies (topic_id, parent_id, author_id, body)
  SELECT t.id, $2, $3, $4 FROM forum_topics t WHERE t.id = $1 AND NOT t.is_deleted AND NOT t.is_locked
  RETURNING json_build_object('id', id, 'topic_id', topic_id, 'parent_id', parent_id, 'depth', depth,
                              'author_id', author_id, 'body_html', body_html, 'created_at', created_at)::text";
const TOPIC_STATE: &str = "SELECT is_locked FROM forum_topics WHERE id = $1 AND NOT is_deleted";

/// Retries on 40001 / 40P01.
const ATTEMPTS: u32 = 3;

fn retryable(error: &tokio_postgres::Error) -> bool {
    matches!(error.code(), Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED)
}

/// What the database refused, as the client's error.
fn refused(error: tokio_postgres::Error) -> AppError {
    let Some(db) = error.as_db_error() else { return AppError::Database(error) };
    let code = db.code();
    if *code == SqlState::FOREIGN_KEY_VIOLATION {
        AppError::Unprocessable { field: "parent_id", message: "parent_id is not a reply of this topic".into() }
    } else if *code == SqlState::STRING_DATA_RIGHT_TRUNCATION || *code == SqlState::PROGRAM_LIMIT_EXCEEDED {
        // Our extension's own messages: the size or nesting limit, safe to show.
        AppError::Unprocessable { field: "body", message: db.message().to_owned() }
    } else {
        AppError::Database(error)
    }
}

/// `POST /api/v1/forums/topics/{id}/replies` → 201 with the stored reply
/// (its sanitized HTML included); 404 for a missing topic, 409 for a locked one.
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(topic): Path<String>,
    Body(reply): Body<NewReply>,
) -> AppResult<Response> {
    let topic: i64 = topic.parse().map_err(|_| AppError::invalid("id", "the topic id must be a number"))?;
    if reply.body.trim().is_empty() {
        return Err(AppError::Unprocessable { field: "body", message: "a reply needs some text".into() });
    }
    if reply.parent_id.is_some_and(|p| p < 1) {
        return Err(AppError::Unprocessable { field: "parent_id", message: "parent_id must be a reply id".into() });
    }
    let client = state.pool.get().await?;
    let statement = client.prepare_cached(INSERT).await?;
    let mut attempt = 0;
    let row = loop {
        attempt += 1;
        match client.query_opt(&statement, &[&topic, &reply.parent_id, &user.session.user_id, &reply.body]).await {
            Ok(row) => break row,
            Err(error) if retryable(&error) && attempt < ATTEMPTS => {
                let jitter = rand::rng().random_range(5..50) * u64::from(attempt);
                tokio::time::sleep(Duration::from_millis(jitter)).await;
            }
            Err(error) => return Err(refused(error)),
        }
    };
    let Some(row) = row else {
        let locked: Option<bool> = client.query_opt(TOPIC_STATE, &[&topic]).await?.map(|r| r.get(0));
        return Err(match locked {
            Some(true) => AppError::Conflict { field: "topic", message: "the topic is locked".into() },
            _ => AppError::NotFound,
        });
    };
    Ok((StatusCode::CREATED, [(header::CONTENT_TYPE, "application/json")], row.get::<_, String>(0)).into_response())
}

//! `Idempotency-Key` (Stripe's semantics): a write sent with the header is
//! answered once; sending it again with the same key and the same request
//! (method, path, body) gets the same status and body back, without writing
//! again, for 24 hours. The same key with another request is refused (422
//! `validation_failed`, field `Idempotency-Key`); a request still running with
//! the key makes a second one wait for it, and answer 409 (`conflict`, field
//! `Idempotency-Key`) if it takes longer than the lock wait (2 s).
//!
//! The answer is stored in the write's own transaction: the request runs
//! inside `BEGIN … COMMIT` on one pooled connection, which every statement
//! of the handler uses (`store::Db::get` inside [`REQUEST_TRANSACTION`]'s
//! scope), the key is claimed first, and the answer is stored just before
//! the commit. A crash at any moment leaves either the write and its answer,
//! or neither. Reply posts with a key take this path too, one row per
//! statement, instead of joining a batch (whose transaction is shared with
//! other users' posts).
//!
//! What is remembered: answers 2xx, which wrote something. A refused request
//! (4xx, 5xx) rolls back and remembers nothing, so its retry is judged
//! afresh (a locked topic may be open by then). Keys are per user (the
//! signed-in session's); requests without a valid session, and the auth
//! endpoints (login makes a new session each time, logout is idempotent by
//! itself, and neither may have its answer, a session token, stored), pass
//! through unremembered.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::store::{Conn, REQUEST_TRANSACTION, Shared};
use crate::{AppError, AppState};

pub const HEADER: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on an answer replayed from a key.
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// A key a client may send: 1–255 visible ASCII characters.
fn valid(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

/// Middleware: runs a keyed write of a signed-in user in one transaction
/// with its key, or answers it from the key.
pub async fn remember(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let writes = matches!(*request.method(), Method::POST | Method::PUT | Method::PATCH | Method::DELETE);
    let Some(key) = request.headers().get(&HEADER).filter(|_| writes) else { return next.run(request).await };
    if request.uri().path().starts_with("/api/v1/auth/") {
        return next.run(request).await;
    }
    let Some(key) = key.to_str().ok().filter(|k| valid(k)).map(str::to_owned) else {
        return AppError::invalid("Idempotency-Key", "an Idempotency-Key is 1 to 255 visible ASCII characters")
            .into_response();
    };
    let user = match crate::http::extract::optional_user(request.headers(), &state).await {
        Ok(Some(user)) => user.user_id,
        // No valid session: the handler answers 401 (or serves an anonymous write) as usual.
        Ok(None) | Err(AppError::Unauthorized) => return next.run(request).await,
        Err(error) => return error.into_response(),
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, state.body_limit_bytes).await else {
        return crate::http::error::too_large();
    };
    let hash = request_hash(&parts.method, parts.uri.path_and_query().map_or("", |p| p.as_str()), &bytes);
    match run(&state, user, &key, &hash, Request::from_parts(parts, Body::from(bytes)), next).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn request_hash(method: &Method, path: &str, body: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(method.as_str());
    hash.update(b"\n");
    hash.update(path);
    hash.update(b"\n");
    hash.update(body);
    hash.finalize().into()
}

async fn run(
    state: &AppState,
    user: i64,
    key: &str,
    hash: &[u8; 32],
    request: Request,
    next: Next,
) -> Result<Response, AppError> {
    let conn = state.db.get().await?;
    let transaction = Transaction::begin(conn).await?;
    let claimed = transaction.conn().idempotency_claim(user, key, hash).await;
    let stored = match claimed {
        Ok(stored) => stored,
        Err(error) if error.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
            return Err(AppError::Conflict {
                field: "Idempotency-Key",
                message: "a request with this key is still running; try again".into(),
            });
        }
        Err(error) => return Err(error.into()),
    };
    if let Some(stored) = stored {
        transaction.rollback().await;
        if stored.request_hash != hash.as_slice() {
            return Err(AppError::Unprocessable {
                field: "Idempotency-Key",
                message: "this key was used with another request".into(),
            });
        }
        return Ok(replay(stored.status, stored.body));
    }
    let response = REQUEST_TRANSACTION.scope(transaction.shared(), next.run(request)).await;
    if !response.status().is_success() {
        transaction.rollback().await;
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("a response body could not be read: {e}")))?;
    let text = String::from_utf8_lossy(&bytes);
    transaction.conn().idempotency_store(user, key, parts.status.as_u16(), &text).await?;
    transaction.commit().await?;
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

/// A stored answer, as first sent (JSON, or empty).
fn replay(status: i16, body: Option<String>) -> Response {
    let status = u16::try_from(status).ok().and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::OK);
    let body = body.unwrap_or_default();
    let mut response = if body.is_empty() {
        status.into_response()
    } else {
        (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
    };
    response.headers_mut().insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

/// `BEGIN` on a pooled connection, shared with the handler while it runs.
/// Dropped before `commit` or `rollback` (the request was abandoned: its
/// client went away or it timed out), it rolls back from a task of its own
/// before the connection goes back to the pool.
struct Transaction {
    shared: Shared,
    finished: bool,
}

impl Transaction {
    async fn begin(conn: Conn) -> Result<Self, AppError> {
        let shared = conn.into_shared();
        let transaction = Self { shared, finished: false };
        transaction.conn().simple("BEGIN").await?;
        Ok(transaction)
    }

    fn shared(&self) -> Shared {
        self.shared.clone()
    }

    fn conn(&self) -> Conn {
        Conn::on_shared(self.shared())
    }

    async fn commit(mut self) -> Result<(), AppError> {
        self.finished = true;
        self.conn().simple("COMMIT").await.map_err(AppError::from)
    }

    async fn rollback(mut self) {
        self.finished = true;
        // A connection that cannot roll back is broken: the pool drops it.
        if let Err(error) = self.conn().simple("ROLLBACK").await {
            tracing::debug!(%error, "rollback of an idempotent request failed");
        }
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let conn = self.conn();
        tokio::spawn(async move {
            let _ = conn.simple("ROLLBACK").await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_up_to_255_bytes() {
        assert!(valid("3f2a9c4e-8b1d-4c55-9e0f-1a2b3c4d5e6f"));
        assert!(valid(&"k".repeat(255)));
        assert!(!valid(""));
        assert!(!valid(&"k".repeat(256)));
        assert!(!valid("has space"));
        assert!(!valid("é"));
    }

    #[test]
    fn the_request_hash_covers_method_path_and_body() {
        let base = request_hash(&Method::POST, "/api/v1/forums/topics", b"{}");
        assert_ne!(base, request_hash(&Method::PUT, "/api/v1/forums/topics", b"{}"));
        assert_ne!(base, request_hash(&Method::POST, "/api/v1/forums/topics/1", b"{}"));
        assert_ne!(base, request_hash(&Method::POST, "/api/v1/forums/topics", b"{ }"));
        assert_eq!(base, request_hash(&Method::POST, "/api/v1/forums/topics", b"{}"));
    }
}

//! The HTTP boundary's error type. Every variant maps to a status and a stable
//! `code`; causes are logged, never sent to clients.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    /// The same answer for a second request that waited on one shared,
    /// failed load (the cache's coalesced misses). The cause stays with the
    /// first request, which logs it.
    pub fn for_another_waiter(&self) -> Self {
        match self {
            Self::NotFound => Self::NotFound,
            Self::Invalid { field, message } => Self::Invalid { field, message: message.clone() },
            Self::Unauthorized => Self::Unauthorized,
            Self::Forbidden(message) => Self::Forbidden(message),
            Self::Conflict { field, message } => Self::Conflict { field, message: message.clone() },
            Self::StaleRevision { current } => Self::StaleRevision { current: current.clone() },
            Self::Unprocessable { field, message } => Self::Unprocessable { field, message: message.clone() },
            Self::BadText { field, message, in_query } => {
                Self::BadText { field: field.clone(), message, in_query: *in_query }
            }
            Self::RateLimited { retry_after } => Self::RateLimited { retry_after: *retry_after },
            Self::OutcomeUnknown => Self::OutcomeUnknown,
            Self::RowLocked => Self::RowLocked,
            Self::Database(error) if lock_not_available(error) => Self::RowLocked,
            Self::Database(error) if connection_lost(error) => Self::OutcomeUnknown,
            other if other.status_and_code().0 == StatusCode::SERVICE_UNAVAILABLE => Self::Busy,
            _ => Self::Internal(anyhow::anyhow!("a shared load failed (logged with the first request)")),
        }
    }

    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid { field, message: message.into() }
    }
}

/// A pool checkout that failed is the database being unavailable (503).
impl From<deadpool_postgres::PoolError> for AppError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        Self::DatabaseUnavailable(error)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("no route or resource at this path")]
    NotFound,
    /// Bad input, named by the parameter or field it came from.
    #[error("{message}")]
    Invalid { field: &'static str, message: String },
    #[error("sign in first: no valid session")]
    Unauthorized,
    /// Signed in, but not allowed to do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Taken already (a unique name), named by the field.
    #[error("{message}")]
    Conflict { field: &'static str, message: String },
    /// An edit based on a revision that is no longer current; `current` is
    /// the page as it is now (JSON), returned beside the error.
    #[error("the page changed since base_revision; merge with the current revision and retry")]
    StaleRevision { current: String },
    /// Well-formed input that breaks a rule, named by the field.
    #[error("{message}")]
    Unprocessable { field: &'static str, message: String },
    /// Text that PostgreSQL cannot store (a NUL), named by where it was:
    /// a JSON path or a query parameter, so not a static name. In a query
    /// parameter it is a bad parameter (400), in a body a bad field (422).
    #[error("{field}: {message}")]
    BadText { field: String, message: &'static str, in_query: bool },
    #[error("too busy right now; retry shortly")]
    Busy,
    /// A row the write needs was held by another transaction (past the
    /// lock timeout, or with every lock waiter taken).
    #[error("a row this write needs is locked by another transaction; retry shortly")]
    RowLocked,
    #[error("too many attempts; retry in {retry_after} s")]
    RateLimited { retry_after: u32 },
    #[error("the database is unavailable")]
    DatabaseUnavailable(#[source] deadpool_postgres::PoolError),
    /// The health probe's remembered outcome (its cause was logged when probed).
    #[error("the database is unavailable")]
    DatabaseDown,
    /// `/healthz` of a proxy shutting down: still serving, leaving rotation.
    #[error("this proxy is shutting down; use another")]
    Draining,
    /// A statement shared with a request whose connection was lost (a
    /// batch's other posts): see [`connection_lost`].
    #[error("{OUTCOME_UNKNOWN}")]
    OutcomeUnknown,
    #[error("database error")]
    Database(#[from] tokio_postgres::Error),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

/// Every error the API answers.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody<'a> {
    error: Detail<'a>,
    /// Only with `stale_revision`: the page as it is now.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    current: Option<serde_json::Value>,
}

/// `{"error": {"code": "...", "message": "...", "field": null}}` (docs/ARCHITECTURE.md).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ErrorDetail)]
pub struct Detail<'a> {
    code: &'a str,
    message: &'a str,
    field: Option<&'a str>,
}

/// Seconds a client should wait before retrying a 503.
const RETRY_AFTER_SECS: &str = "1";

impl AppError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::Invalid { .. } | Self::BadText { in_query: true, .. } => {
                (StatusCode::BAD_REQUEST, "invalid_parameter")
            }
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::Conflict { .. } => (StatusCode::CONFLICT, "conflict"),
            Self::StaleRevision { .. } => (StatusCode::CONFLICT, "stale_revision"),
            Self::Unprocessable { .. } | Self::BadText { in_query: false, .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
            }
            Self::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            Self::RowLocked => (StatusCode::SERVICE_UNAVAILABLE, "row_locked"),
            Self::Database(error) if lock_not_available(error) => (StatusCode::SERVICE_UNAVAILABLE, "row_locked"),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::DatabaseUnavailable(_) | Self::DatabaseDown => {
                (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable")
            }
            Self::Draining => (StatusCode::SERVICE_UNAVAILABLE, "draining"),
            Self::Database(error) if timed_out(error) => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            Self::OutcomeUnknown => (StatusCode::SERVICE_UNAVAILABLE, "outcome_unknown"),
            Self::Database(error) if connection_lost(error) => (StatusCode::SERVICE_UNAVAILABLE, "outcome_unknown"),
            Self::Database(_) | Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

/// The connection ended with the statement in flight, or the server said it
/// is going away (shut down, crashed, restarting, or ended this backend):
/// whether a write took effect is unknown, and the fault is not the request's.
pub fn connection_lost(error: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    if error.is_closed() {
        return true;
    }
    match error.code() {
        Some(code) => {
            [SqlState::ADMIN_SHUTDOWN, SqlState::CRASH_SHUTDOWN, SqlState::CANNOT_CONNECT_NOW].contains(code)
                || code.code().starts_with("08")
        }
        // An I/O error on the socket (reset, broken pipe, end of stream).
        None => std::error::Error::source(error).is_some_and(|cause| cause.is::<std::io::Error>()),
    }
}

const OUTCOME_UNKNOWN: &str =
    "the connection to the database was lost before its answer came: a write may or may not have been made; retry";

/// The role's statement or lock timeout ended the statement (migration
/// 011), or it lost a deadlock or a serialization conflict past its retries
/// (or inside a transaction, where it cannot be retried alone): the database
/// is overloaded or a row is hot, so retrying later may work.
fn timed_out(error: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    let again = [
        SqlState::QUERY_CANCELED,
        SqlState::LOCK_NOT_AVAILABLE,
        SqlState::T_R_SERIALIZATION_FAILURE,
        SqlState::T_R_DEADLOCK_DETECTED,
    ];
    error.code().is_some_and(|code| again.contains(code))
}

/// The statement waited for a row lock past `lock_timeout` (55P03).
pub fn lock_not_available(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE)
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        match &self {
            // An outage is logged once, by the reachability watcher (store::watch), not per request.
            Self::DatabaseUnavailable(cause) => tracing::debug!(error = %cause, "database unavailable"),
            Self::Database(cause) if connection_lost(cause) => tracing::debug!(error = %cause, "connection lost"),
            Self::Database(cause) if lock_not_available(cause) => {
                tracing::warn!(error = %cause, "a row lock was not granted within lock_timeout")
            }
            Self::Database(cause) if timed_out(cause) => tracing::warn!(error = %cause, "statement timed out"),
            Self::Database(cause) => tracing::error!(error = %cause, "database error"),
            Self::Internal(cause) => tracing::error!(error = format!("{cause:#}"), "internal error"),
            Self::NotFound
            | Self::Invalid { .. }
            | Self::Unauthorized
            | Self::Forbidden(_)
            | Self::Conflict { .. }
            | Self::StaleRevision { .. }
            | Self::Unprocessable { .. }
            | Self::BadText { .. }
            | Self::Busy
            | Self::RowLocked
            | Self::DatabaseDown
            | Self::Draining
            | Self::OutcomeUnknown
            | Self::RateLimited { .. } => {}
        }
        let message = match code {
            "busy" => Self::Busy.to_string(),
            "row_locked" => Self::RowLocked.to_string(),
            "outcome_unknown" => OUTCOME_UNKNOWN.to_owned(),
            _ => self.to_string(),
        };
        let field = match &self {
            Self::Invalid { field, .. } | Self::Conflict { field, .. } | Self::Unprocessable { field, .. } => {
                Some(*field)
            }
            Self::BadText { field, .. } => Some(field.as_str()),
            Self::StaleRevision { .. } => Some("base_revision"),
            _ => None,
        };
        let current = match &self {
            Self::StaleRevision { current } => serde_json::from_str(current).ok(),
            _ => None,
        };
        let mut response =
            (status, Json(ErrorBody { error: Detail { code, message: &message, field }, current })).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
        }
        if let Self::RateLimited { retry_after } = self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        response
    }
}

/// 413 in the API's error format (request bodies over the limit).
pub fn too_large() -> Response {
    let detail =
        Detail { code: "payload_too_large", message: "the request body is over the size limit", field: Some("body") };
    (StatusCode::PAYLOAD_TOO_LARGE, Json(ErrorBody { error: detail, current: None })).into_response()
}

/// What the database refused of a write, as the client's error: a missing
/// referenced row names `foreign_key_field`; the extension's size and nesting
/// limits and the tables' CHECKs name the body.
pub fn refused(error: tokio_postgres::Error, foreign_key_field: &'static str) -> AppError {
    use tokio_postgres::error::SqlState;
    let Some(db) = error.as_db_error() else { return AppError::Database(error) };
    let code = db.code();
    if *code == SqlState::FOREIGN_KEY_VIOLATION {
        AppError::Unprocessable {
            field: foreign_key_field,
            message: format!("{foreign_key_field} does not exist here"),
        }
    } else if *code == SqlState::STRING_DATA_RIGHT_TRUNCATION || *code == SqlState::PROGRAM_LIMIT_EXCEEDED {
        // Our extension's own messages: the size or nesting limit, safe to show.
        AppError::Unprocessable { field: "body", message: db.message().to_owned() }
    } else if *code == SqlState::CHECK_VIOLATION {
        AppError::Unprocessable { field: "body", message: "the text breaks a content rule (length or format)".into() }
    } else {
        AppError::Database(error)
    }
}

//! The HTTP boundary's error type. Every variant maps to a status and a stable
//! `code`; causes are logged, never sent to clients.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
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
    #[error("the database is unavailable")]
    DatabaseUnavailable(#[source] deadpool_postgres::PoolError),
    #[error("database error")]
    Database(#[from] tokio_postgres::Error),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

/// `{"error": {"code": "...", "message": "...", "field": null}}` (DESIGN.md).
#[derive(Serialize)]
struct Detail<'a> {
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
            Self::Invalid { .. } => (StatusCode::BAD_REQUEST, "invalid_parameter"),
            Self::DatabaseUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable"),
            Self::Database(_) | Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        match &self {
            Self::DatabaseUnavailable(cause) => tracing::warn!(error = %cause, "database unavailable"),
            Self::Database(cause) => tracing::error!(error = %cause, "database error"),
            Self::Internal(cause) => tracing::error!(error = format!("{cause:#}"), "internal error"),
            Self::NotFound | Self::Invalid { .. } => {}
        }
        let message = self.to_string();
        let field = match &self {
            Self::Invalid { field, .. } => Some(*field),
            _ => None,
        };
        let mut response = (status, Json(Body { error: Detail { code, message: &message, field } })).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
        }
        response
    }
}

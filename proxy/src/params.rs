//! Query-string extraction whose rejections are the API's JSON errors
//! (axum's own rejections are plain text).

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::AppError;

/// `Query<T>`, answering malformed input with 400 `invalid_parameter`.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(rejected(&rejection)),
        }
    }
}

fn rejected(rejection: &QueryRejection) -> AppError {
    AppError::invalid("query", rejection.body_text())
}

/// `Json<T>`, answering bad bodies with the API's JSON errors: malformed JSON
/// 400, a body of the wrong shape 422, a body over the limit 413.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = axum::response::Response;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::JsonRejection;
        use axum::response::IntoResponse;
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(match &rejection {
                JsonRejection::JsonDataError(e) => {
                    AppError::Unprocessable { field: "body", message: e.body_text() }.into_response()
                }
                JsonRejection::BytesRejection(_) if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                    crate::error::too_large()
                }
                other => AppError::invalid("body", other.body_text()).into_response(),
            }),
        }
    }
}

/// Page sizes of every list: 1..=100, 20 unless asked.
pub const MAX_PAGE: i32 = 100;
pub const DEFAULT_PAGE: i32 = 20;

/// The page size asked for, or 400 naming `limit`.
pub fn page_size(limit: Option<i32>) -> Result<i32, AppError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(AppError::invalid("limit", format!("limit must be between 1 and {MAX_PAGE}")));
    }
    Ok(limit)
}

/// A numeric cursor (an id or a number from an earlier page's `next_cursor`).
pub fn numeric_cursor(cursor: Option<&str>) -> Result<Option<i64>, AppError> {
    cursor
        .map(|c| c.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| AppError::invalid("cursor", "not a cursor from this list")))
        .transpose()
}

/// The JSON of one keyset page, `{"items": [...], "next_cursor": ...}`, over
/// a subquery `p` of at most limit + 1 rows with columns `n` (the row's place
/// in page order), `key` (text: the cursor that continues after that row) and
/// `item` (its JSON). `$limit` is the page size's placeholder, like `"$2"`.
/// A macro so the statements can `concat!` it.
#[macro_export]
macro_rules! page_json {
    ($limit:literal) => {
        concat!(
            "json_build_object('items', coalesce(json_agg(p.item ORDER BY p.n) FILTER (WHERE p.n <= ", $limit,
            "), '[]'), 'next_cursor', CASE WHEN count(*) > ", $limit, " THEN max(p.key) FILTER (WHERE p.n = ", $limit,
            ") END)::text"
        )
    };
}

/// A positive id from the path, or 400 naming `id`.
pub fn parse_id(raw: &str, what: &'static str) -> Result<i64, AppError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| AppError::invalid("id", format!("the {what} id must be a positive number")))
}

/// 422 naming `field` when `text` is blank.
pub fn require_text(field: &'static str, text: &str) -> Result<(), AppError> {
    if text.trim().is_empty() {
        return Err(AppError::Unprocessable { field, message: format!("{field} needs some text") });
    }
    Ok(())
}

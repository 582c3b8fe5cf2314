//! Extractors: the signed-in user (`CurrentUser`, `Writer`), query strings
//! and JSON bodies whose rejections are the API's JSON errors (axum's own
//! rejections are plain text), and the shared checks of ids, text and pages.

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;

use crate::sessions::{self, COOKIE, HotSession, TokenHash};
use crate::{AppError, AppResult, AppState};

/// `Query<T>`, answering malformed input with 400 `invalid_parameter`.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(query) = parts.uri.query()
            && let Some(field) = nul_in_query(query)
        {
            return Err(AppError::BadText { field, message: NUL_MESSAGE, in_query: true });
        }
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(rejected(&rejection)),
        }
    }
}

fn rejected(rejection: &QueryRejection) -> AppError {
    AppError::invalid("query", rejection.body_text())
}

/// PostgreSQL's `text` cannot hold U+0000, so a NUL anywhere in the input
/// is refused at the edge, with the place it was found, instead of failing
/// inside a statement.
pub const NUL_MESSAGE: &str = "text cannot contain the NUL character (U+0000)";

/// The query parameter (decoded) whose name or value holds a NUL.
fn nul_in_query(query: &str) -> Option<String> {
    if !query.contains("%00") && !query.contains('\0') {
        return None;
    }
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, value)| key.contains('\0') || value.contains('\0'))
        .map(|(key, _)| key.replace('\0', "\\u0000"))
}

/// The path (`title`, `tags[2]`, `preferences.theme`) of the first string
/// or key in `value` that holds a NUL.
fn nul_in_json(value: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    let mut stack: Vec<(String, &Value)> = vec![(String::new(), value)];
    while let Some((path, value)) = stack.pop() {
        match value {
            Value::String(text) if text.contains('\0') => {
                return Some(if path.is_empty() { "body".into() } else { path });
            }
            Value::Array(items) => {
                stack.extend(items.iter().enumerate().map(|(i, item)| (format!("{path}[{i}]"), item)))
            }
            Value::Object(members) => {
                for (key, item) in members {
                    let at = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                    if key.contains('\0') {
                        return Some(at.replace('\0', "\\u0000"));
                    }
                    stack.push((at, item));
                }
            }
            _ => {}
        }
    }
    None
}

/// `Json<T>`, answering bad bodies with the API's JSON errors: malformed JSON
/// 400, a body of the wrong shape 422, a body over the limit 413.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = axum::response::Response;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::JsonRejection;
        use axum::response::IntoResponse;
        let is_json = request
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !is_json {
            return Err(
                AppError::invalid("body", "Expected request with `Content-Type: application/json`").into_response()
            );
        }
        let bytes = match axum::body::Bytes::from_request(request, state).await {
            Ok(bytes) => bytes,
            Err(rejection) if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(crate::http::error::too_large());
            }
            Err(rejection) => return Err(AppError::invalid("body", rejection.body_text()).into_response()),
        };
        // A NUL can only arrive escaped; look closer only when one may be there.
        if bytes.windows(6).any(|w| w == b"\\u0000")
            && let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes)
            && let Some(field) = nul_in_json(&value)
        {
            return Err(AppError::BadText { field, message: NUL_MESSAGE, in_query: false }.into_response());
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(match &rejection {
                JsonRejection::JsonDataError(e) => {
                    AppError::Unprocessable { field: "body", message: e.body_text() }.into_response()
                }
                other => AppError::invalid("body", other.body_text()).into_response(),
            }),
        }
    }
}

/// Page sizes of every list: 1..=100, 20 unless asked.
pub use veritable_core::rules::{PAGE_SIZE_DEFAULT as DEFAULT_PAGE, PAGE_SIZE_MAX as MAX_PAGE};

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
        .map(|c| {
            c.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| AppError::invalid("cursor", "not a cursor from this list"))
        })
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
            "json_build_object('items', coalesce(json_agg(p.item ORDER BY p.n) FILTER (WHERE p.n <= ",
            $limit,
            "), '[]'), 'next_cursor', CASE WHEN count(*) > ",
            $limit,
            " THEN max(p.key) FILTER (WHERE p.n = ",
            $limit,
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

/// The signed-in user of a request; extracting it answers 401 when absent.
pub struct CurrentUser {
    pub session: HotSession,
    pub token_hash: TokenHash,
}

/// The hash of the session token a request carries, if any, unchecked: for
/// choosing how to answer a public read, never for deciding what it may do.
pub fn presented_hash(headers: &HeaderMap) -> Option<sessions::TokenHash> {
    presented_token(headers).and_then(sessions::hash_of)
}

fn presented_token(headers: &HeaderMap) -> Option<&str> {
    bearer_token(headers).or_else(|| cookie_token(headers))
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, COOKIE)
}

/// The value of the cookie `wanted`, if the request carries it.
pub fn cookie<'h>(headers: &'h HeaderMap, wanted: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| value)
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // A cookie rides along on cross-site requests; a bearer token does not.
        if bearer_token(&parts.headers).is_none()
            && cookie_token(&parts.headers).is_some()
            && !super::origin::write_allowed(
                &parts.method,
                &parts.headers,
                &state.realtime.allowed_origins,
                state.cookie_secure,
            )
        {
            return Err(AppError::Forbidden(
                "a cookie-signed write must come from this site (Origin / Sec-Fetch-Site)",
            ));
        }
        let hash = presented_token(&parts.headers).and_then(sessions::hash_of).ok_or(AppError::Unauthorized)?;
        let session = state.sessions.lookup(&state.db, &hash).await?.ok_or(AppError::Unauthorized)?;
        Ok(Self { session, token_hash: hash })
    }
}

/// The signed-in user of a write other than a post, counted against the
/// per-user write limit in PostgreSQL (every proxy shares it) before the
/// handler runs: 429 with Retry-After past it. Posts count in their own
/// statement instead (`limits::PostLimit`).
pub struct Writer(pub CurrentUser);

impl FromRequestParts<AppState> for Writer {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let user = CurrentUser::from_request_parts(parts, state).await?;
        crate::limits::write_attempt(&state.db, state.write_limit, user.session.user_id).await?;
        Ok(Self(user))
    }
}

/// The signed-in user when a token is presented (a bad one is 401), else
/// None: for endpoints open to anonymous clients.
pub async fn optional_user(headers: &HeaderMap, state: &AppState) -> Result<Option<HotSession>, AppError> {
    let Some(token) = presented_token(headers) else { return Ok(None) };
    let hash = sessions::hash_of(token).ok_or(AppError::Unauthorized)?;
    state.sessions.lookup(&state.db, &hash).await?.ok_or(AppError::Unauthorized).map(Some)
}

/// Who may change a post: its author while the topic is open, or a moderator.
/// `changed` is `None` when the statement changed nothing.
pub fn judge<T>(user: &CurrentUser, author: i64, locked: bool, changed: Option<T>) -> AppResult<T> {
    if let Some(changed) = changed {
        return Ok(changed);
    }
    if !user.session.may_moderate() && author != user.session.user_id {
        return Err(AppError::Forbidden("only the author or a moderator may change this"));
    }
    if !user.session.may_moderate() && locked {
        return Err(AppError::Conflict { field: "topic", message: "the topic is locked".into() });
    }
    // Allowed, yet nothing changed: deleted by someone else meanwhile.
    Err(AppError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nul_bytes_and_names_where() {
        let value = serde_json::json!({"title": "ok", "tags": ["a", "b\u{0}"], "prefs": {"x": {"y": "\u{0}"}}});
        let found = nul_in_json(&value).expect("a NUL");
        assert!(found == "tags[1]" || found == "prefs.x.y", "{found}");
        assert_eq!(nul_in_json(&serde_json::json!({"a\u{0}b": 1})).as_deref(), Some("a\\u0000b"));
        assert_eq!(nul_in_json(&serde_json::json!("\u{0}")).as_deref(), Some("body"));
        assert_eq!(nul_in_json(&serde_json::json!({"a": ["fine", 1, null, {"b": "also"}]})), None);
        assert_eq!(nul_in_query("q=a%00b&limit=2").as_deref(), Some("q"));
        assert_eq!(nul_in_query("x%00=1").as_deref(), Some("x\\u0000"));
        assert_eq!(nul_in_query("q=a%2500"), None, "an escaped percent sign is not a NUL");
    }
}

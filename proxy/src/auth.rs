//! Accounts and sessions over HTTP: register, login, logout, me. The session
//! is accepted as the `veritable_session` cookie or `Authorization: Bearer`.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use tokio_postgres::types::Type;

use crate::db::Sql;
use crate::params::Body;
use crate::server::AppState;
use crate::sessions::{self, COOKIE, HotSession, LIFETIME_DAYS, TokenHash};
use crate::{AppError, AppResult};

/// The signed-in user of a request; extracting it answers 401 when absent.
pub struct CurrentUser {
    pub session: HotSession,
    pub token_hash: TokenHash,
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
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // A cookie rides along on cross-site requests; a bearer token does not.
        if bearer_token(&parts.headers).is_none()
            && cookie_token(&parts.headers).is_some()
            && !crate::origin::write_allowed(
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

fn session_cookie(token: &str, secure: bool, max_age_secs: i64) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let value = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}");
    // Tokens are hex, so the value is always a valid header.
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn signed_in(status: StatusCode, state: &AppState, token: &str, user: serde_json::Value) -> Response {
    let cookie = session_cookie(token, state.cookie_secure, i64::from(LIFETIME_DAYS) * 86_400);
    (status, [(header::SET_COOKIE, cookie)], Json(json!({ "token": token, "user": user }))).into_response()
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Register {
    username: String,
    email: String,
    password: String,
    display_name: Option<String>,
}

fn validate(register: &Register) -> AppResult<()> {
    let name = &register.username;
    if !(3..=32).contains(&name.len()) || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(AppError::Unprocessable { field: "username", message: "3 to 32 letters, digits or _".into() });
    }
    // The table's CHECK: 3 to 254 characters matching ^[^@\s]+@[^@\s]+$
    // (Rust's whitespace is a superset of PostgreSQL's \s).
    let email = &register.email;
    let well_formed = email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if !(3..=254).contains(&email.chars().count()) || !well_formed || email.chars().any(char::is_whitespace) {
        return Err(AppError::Unprocessable { field: "email", message: "not an email address".into() });
    }
    if !(8..=256).contains(&register.password.chars().count()) {
        return Err(AppError::Unprocessable { field: "password", message: "8 to 256 characters".into() });
    }
    if let Some(display) = &register.display_name
        && (display.trim().is_empty() || display.chars().count() > 64)
    {
        return Err(AppError::Unprocessable { field: "display_name", message: "1 to 64 characters".into() });
    }
    Ok(())
}

const TAKEN: Sql = Sql {
    name: "user_taken",
    types: &[Type::TEXT, Type::TEXT],
    text: "SELECT EXISTS (SELECT 1 FROM users WHERE lower(username) = lower($1)),
                  EXISTS (SELECT 1 FROM users WHERE lower(email) = lower($2))",
};

const INSERT_USER: Sql = Sql {
    name: "user_register",
    types: &[Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT],
    text: "INSERT INTO users (username, display_name, email, password_hash) VALUES ($1, $2, $3, $4)
  RETURNING json_build_object('id', id, 'username', username, 'display_name', display_name, 'role', role)::text",
};

/// `POST /api/v1/auth/register` → 201 with a session.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = Register, responses((status = 201, description = "registered and signed in: token, user; sets the session cookie", body = Object), (status = 400, description = "bad parameter", body = crate::error::ErrorBody), (status = 409, description = "conflict", body = crate::error::ErrorBody), (status = 422, description = "invalid body", body = crate::error::ErrorBody), (status = 429, description = "rate limited (Retry-After)", body = crate::error::ErrorBody), (status = 503, description = "overloaded or database unavailable (Retry-After)", body = crate::error::ErrorBody)))]
pub async fn register(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Body(body): Body<Register>,
) -> AppResult<Response> {
    validate(&body)?;
    crate::limits::registration_attempt(&state.db, state.registrations_per_hour, peer.ip()).await?;
    // A taken name or address is answered before argon2 runs; the unique
    // indexes below still decide a race between two registrations.
    let taken = state.db.get().await?.one(&TAKEN, &[&body.username, &body.email]).await?;
    if taken.get::<_, bool>(0) {
        return Err(AppError::Conflict { field: "username", message: "that username is taken".into() });
    }
    if taken.get::<_, bool>(1) {
        return Err(AppError::Conflict { field: "email", message: "that email is registered already".into() });
    }
    let hash = state.hasher.hash(body.password.clone()).await?;
    let display = body.display_name.clone().unwrap_or_else(|| body.username.clone());
    let client = state.db.get().await?;
    let row = client.opt(&INSERT_USER, &[&body.username, &display, &body.email, &hash]).await.map_err(|e| {
        match e.as_db_error().filter(|db| db.code() == &tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
            Some(db) if db.constraint() == Some("users_email_key") => {
                AppError::Conflict { field: "email", message: "that email is registered already".into() }
            }
            Some(_) => AppError::Conflict { field: "username", message: "that username is taken".into() },
            None => AppError::Database(e),
        }
    })?;
    drop(client);
    let row = row.ok_or_else(|| AppError::Internal(anyhow::anyhow!("INSERT … RETURNING returned no row")))?;
    let user: serde_json::Value =
        serde_json::from_str(&row.get::<_, String>(0)).map_err(|e| AppError::Internal(e.into()))?;
    let id = user["id"].as_i64().ok_or_else(|| AppError::Internal(anyhow::anyhow!("no id returned")))?;
    let token = state.sessions.create(&state.db, id).await?;
    Ok(signed_in(StatusCode::CREATED, &state, &token, user))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    username: String,
    password: String,
}

const FIND_USER: Sql = Sql {
    name: "user_find",
    types: &[Type::TEXT],
    text: "SELECT id, password_hash,
        json_build_object('id', id, 'username', username, 'display_name', display_name, 'role', role)::text
   FROM users WHERE lower(username) = lower($1) AND NOT is_deleted",
};

/// `POST /api/v1/auth/login` → 200 with a session; one answer for a wrong
/// password and an unknown user; 429 past the per-address or per-account
/// limit (counted in PostgreSQL, before any hashing). The address is the TCP
/// peer: behind a reverse proxy, all clients share its address.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = Login, responses((status = 200, description = "signed in: token, user; sets the session cookie", body = Object), (status = 400, description = "malformed body", body = crate::error::ErrorBody), (status = 422, description = "invalid body", body = crate::error::ErrorBody), (status = 401, description = "no valid session", body = crate::error::ErrorBody), (status = 429, description = "rate limited (Retry-After)", body = crate::error::ErrorBody), (status = 503, description = "overloaded or database unavailable (Retry-After)", body = crate::error::ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Body(body): Body<Login>,
) -> AppResult<Response> {
    crate::limits::login_attempt(&state.db, state.login_limits, peer.ip(), &body.username).await?;
    if body.username.len() > 64 || body.password.len() > 1024 {
        return Err(AppError::Unauthorized);
    }
    let row = state.db.get().await?.opt(&FIND_USER, &[&body.username]).await?;
    let stored = row.as_ref().map(|r| r.get::<_, String>(1));
    if !state.hasher.verify(body.password, stored).await? {
        return Err(AppError::Unauthorized);
    }
    let row = row.ok_or(AppError::Unauthorized)?;
    let user: serde_json::Value =
        serde_json::from_str(&row.get::<_, String>(2)).map_err(|e| AppError::Internal(e.into()))?;
    let token = state.sessions.create(&state.db, row.get(0)).await?;
    Ok(signed_in(StatusCode::OK, &state, &token, user))
}

/// `POST /api/v1/auth/logout` → 204; the token stops working everywhere.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", responses((status = 204, description = "the session is revoked on every proxy within 1 s"), (status = 401, description = "no valid session", body = crate::error::ErrorBody)), security(("bearer" = []), ("cookie" = [])))]
pub async fn logout(State(state): State<AppState>, user: CurrentUser) -> AppResult<Response> {
    state.sessions.revoke(&state.db, &user.token_hash).await?;
    let cookie = session_cookie("", state.cookie_secure, 0);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// `GET /api/v1/me`: the hot record only (no query when cached).
#[utoipa::path(get, path = "/api/v1/me", tag = "auth", responses((status = 200, description = "id, username, role, session_expires_at", body = Object), (status = 401, description = "no valid session", body = crate::error::ErrorBody)), security(("bearer" = []), ("cookie" = [])))]
pub async fn me(user: CurrentUser) -> Json<serde_json::Value> {
    let s = user.session;
    Json(json!({ "id": s.user_id, "username": s.username, "role": s.role, "session_expires_at": s.expires_at }))
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

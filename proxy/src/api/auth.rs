//! Accounts and sessions over HTTP: register, login, logout, me. The session
//! is accepted as the `veritable_session` cookie or `Authorization: Bearer`.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use veritable_core::rules;

use crate::http::error::ErrorBody;
use crate::http::extract::{Body, CurrentUser};
use crate::sessions::{COOKIE, LIFETIME_DAYS};
use crate::{AppError, AppResult, AppState};

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
    if !rules::is_username(&register.username) {
        return Err(AppError::Unprocessable { field: "username", message: "3 to 32 letters, digits or _".into() });
    }
    if !rules::is_email(&register.email) {
        return Err(AppError::Unprocessable { field: "email", message: "not an email address".into() });
    }
    if !rules::PASSWORD_CHARS.contains(&register.password.chars().count()) {
        return Err(AppError::Unprocessable { field: "password", message: "8 to 256 characters".into() });
    }
    if let Some(display) = &register.display_name
        && (display.trim().is_empty() || display.chars().count() > rules::DISPLAY_NAME_MAX_CHARS)
    {
        return Err(AppError::Unprocessable { field: "display_name", message: "1 to 64 characters".into() });
    }
    Ok(())
}

/// `POST /api/v1/auth/register` → 201 with a session.
#[utoipa::path(
    post,
    path = "/api/v1/auth/register",
    tag = "auth",
    request_body = Register,
    responses(
        (status = 201, description = "registered and signed in: token, user; sets the session cookie", body = Object),
        (status = 400, description = "bad parameter", body = ErrorBody),
        (status = 409, description = "conflict", body = ErrorBody),
        (status = 422, description = "invalid body", body = ErrorBody),
        (status = 429, description = "rate limited (Retry-After)", body = ErrorBody),
        (status = 503, description = "overloaded or database unavailable (Retry-After)", body = ErrorBody),
    ),
)]
pub async fn register(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Body(body): Body<Register>,
) -> AppResult<Response> {
    validate(&body)?;
    crate::limits::registration_attempt(&state.db, state.registrations_per_hour, peer.ip()).await?;
    // A taken name or address is answered before argon2 runs; the unique
    // indexes below still decide a race between two registrations.
    let (name_taken, email_taken) = state.db.get().await?.user_taken(&body.username, &body.email).await?;
    if name_taken {
        return Err(AppError::Conflict { field: "username", message: "that username is taken".into() });
    }
    if email_taken {
        return Err(AppError::Conflict { field: "email", message: "that email is registered already".into() });
    }
    let hash = state.hasher.hash(body.password.clone()).await?;
    let display = body.display_name.clone().unwrap_or_else(|| body.username.clone());
    let client = state.db.get().await?;
    let row = client.user_register(&body.username, &display, &body.email, &hash).await.map_err(|e| {
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

/// `POST /api/v1/auth/login` → 200 with a session; one answer for a wrong
/// password and an unknown user; 429 past the per-address or per-account
/// limit (counted in PostgreSQL, before any hashing). The address is the TCP
/// peer: behind a reverse proxy, all clients share its address.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body = Login,
    responses(
        (status = 200, description = "signed in: token, user; sets the session cookie", body = Object),
        (status = 400, description = "malformed body", body = ErrorBody),
        (status = 422, description = "invalid body", body = ErrorBody),
        (status = 401, description = "no valid session", body = ErrorBody),
        (status = 429, description = "rate limited (Retry-After)", body = ErrorBody),
        (status = 503, description = "overloaded or database unavailable (Retry-After)", body = ErrorBody),
    ),
)]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Body(body): Body<Login>,
) -> AppResult<Response> {
    crate::limits::login_attempt(&state.db, state.login_limits, peer.ip(), &body.username).await?;
    if body.username.len() > 64 || body.password.len() > 1024 {
        return Err(AppError::Unauthorized);
    }
    let row = state.db.get().await?.user_find(&body.username).await?;
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
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    responses(
        (status = 204, description = "the session is revoked on every proxy within 1 s"),
        (status = 401, description = "no valid session", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
pub async fn logout(State(state): State<AppState>, user: CurrentUser) -> AppResult<Response> {
    state.sessions.revoke(&state.db, &user.token_hash).await?;
    let cookie = session_cookie("", state.cookie_secure, 0);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// `GET /api/v1/me`: the hot record only (no query when cached).
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "auth",
    responses(
        (status = 200, description = "id, username, role, session_expires_at", body = Object),
        (status = 401, description = "no valid session", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
pub async fn me(user: CurrentUser) -> Json<serde_json::Value> {
    let s = user.session;
    Json(json!({ "id": s.user_id, "username": s.username, "role": s.role, "session_expires_at": s.expires_at }))
}

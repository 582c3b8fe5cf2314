//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! annotations and the request types' `ToSchema` derives; served at
//! `/api/v1/openapi.json`.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{auth, forums, health, metrics, people, replies, search, topics, wiki};

#[derive(OpenApi)]
#[openapi(
    info(title = "veritable", description = "Forums, wiki, notifications and activity over PostgreSQL. \
        Errors are `{\"error\": {\"code\", \"message\", \"field\"}}`; lists are cursor-paginated."),
    paths(
        health::healthz, metrics::render,
        auth::register, auth::login, auth::logout, auth::me,
        people::preferences, people::save_preferences, people::notifications, people::mark_read, people::activity,
        forums::categories, forums::topics, topics::create, topics::detail, topics::change,
        forums::replies, replies::create, replies::edit, replies::delete,
        wiki::list, wiki::page, wiki::save, wiki::revisions,
        search::search,
    ),
    modifiers(&SessionSchemes),
)]
pub struct ApiDoc;

/// A session is a bearer token or the `veritable_session` cookie.
struct SessionSchemes;

impl Modify for SessionSchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(crate::sessions::COOKIE))),
        );
    }
}

static DOCUMENT: LazyLock<String> =
    LazyLock::new(|| ApiDoc::openapi().to_json().unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")));

/// `GET /api/v1/openapi.json`.
pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT.as_str())
}

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
    modifiers(&SessionSchemes, &EdgeResponses),
)]
pub struct ApiDoc;

/// A session is a bearer token or the `veritable_session` cookie.
struct SessionSchemes;

impl Modify for SessionSchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(crate::sessions::COOKIE))),
        );
    }
}

/// Answers the edge gives any operation, whatever its handler does: a body
/// that is not JSON (400) or over the limit (413), a proxy shedding load or
/// timing out (503). Added here once instead of in every annotation.
struct EdgeResponses;

impl Modify for EdgeResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{Content, Ref, ResponseBuilder};
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content("application/json", Content::new(Some(Ref::from_schema_name("Error"))))
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                if operation.request_body.is_some() {
                    responses.entry("400".into()).or_insert_with(|| error("malformed body or bad parameter").into());
                    responses.entry("413".into()).or_insert_with(|| error("body over the size limit").into());
                }
                responses.entry("503".into()).or_insert_with(|| error("overloaded or timed out (Retry-After)").into());
            }
        }
    }
}

static DOCUMENT: LazyLock<String> =
    LazyLock::new(|| ApiDoc::openapi().to_json().unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")));

/// `GET /api/v1/openapi.json`.
pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT.as_str())
}

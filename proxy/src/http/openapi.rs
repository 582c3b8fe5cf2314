//! The OpenAPI 3.1 document's frame: its info, the session schemes, and the
//! answers the edge adds to every operation. The operations themselves come
//! from the route table ([`super::routes`]), which lists each handler once;
//! their method, path, parameters and answers from its `#[utoipa::path]`.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "veritable", description = "Forums, wiki, notifications and activity over PostgreSQL. \
        Errors are `{\"error\": {\"code\", \"message\", \"field\"}}`; lists are cursor-paginated."),
    modifiers(&SessionSchemes),
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
pub struct EdgeResponses;

impl Modify for EdgeResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{Content, Ref, ResponseBuilder};
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content("application/json", Content::new(Some(Ref::from_schema_name("Error"))))
                .build()
        };
        for (path, item) in &mut openapi.paths.paths {
            let keyed = !path.starts_with("/api/v1/auth/");
            let writes = [&mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in writes.into_iter().flatten().filter(|_| keyed) {
                idempotency_key(operation);
                let responses = &mut operation.responses.responses;
                responses.entry("400".into()).or_insert_with(|| error("bad parameter").into());
                responses.entry("409".into()).or_insert_with(|| error("conflict").into());
                responses.entry("422".into()).or_insert_with(|| error("invalid body").into());
            }
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

/// The `Idempotency-Key` header of a write (http/idempotency.rs).
fn idempotency_key(operation: &mut utoipa::openapi::path::Operation) {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::{ObjectBuilder, Required, Type};
    let parameter = ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Any 1-255 visible ASCII characters (a UUID): the same request sent again with the same key within \
             24 h gets the first answer (header Idempotent-Replayed: true) without writing again; the same key \
             with another request answers 422, while the first is still running 409",
        ))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)).max_length(Some(255))))
        .build();
    operation.parameters.get_or_insert_with(Vec::new).push(parameter);
}

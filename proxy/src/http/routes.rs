//! The one route table. Each handler is listed once, here; its method and
//! path come from its `#[utoipa::path]`, and the same list builds both the
//! router and the OpenAPI document (utoipa-axum), so the two cannot differ.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::routing::get;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::middleware::{self, RequestIds, log_failure, request_span, shed_load};
use super::openapi::{ApiDoc, EdgeResponses};
use crate::api::{
    activity, auth, categories, health, notifications, preferences, preview, replies, search, topics, wiki,
};
use crate::config::ServeConfig;
use crate::{AppError, AppState, realtime};

/// Every documented operation. Handlers of one path go in one `routes!`.
fn table() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::metrics))
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(preferences::show, preferences::save))
        .routes(routes!(notifications::list))
        .routes(routes!(notifications::mark_read))
        .routes(routes!(activity::list))
        .routes(routes!(wiki::list))
        .routes(routes!(wiki::page, wiki::save))
        .routes(routes!(wiki::revisions))
        .routes(routes!(search::search))
        .routes(routes!(categories::categories))
        .routes(routes!(topics::list, topics::create))
        .routes(routes!(topics::detail, topics::change))
        .routes(routes!(replies::tree, replies::create))
        .routes(routes!(replies::edit, replies::delete))
        .routes(routes!(replies::subtree))
        .routes(routes!(preview::render))
}

/// The document of [`table`], with the answers the edge adds everywhere.
fn finish(mut document: Document) -> Document {
    EdgeResponses.modify(&mut document);
    document
}

/// The OpenAPI document served at `/api/v1/openapi.json`.
#[must_use]
pub fn openapi() -> Document {
    finish(table().split_for_parts().1)
}

/// The router: the table, plus the routes that are not operations of the
/// API (the document itself, the WebSocket upgrade, the web page), the
/// fallback and the middleware.
pub fn router(state: AppState, config: &ServeConfig) -> Router {
    let (router, document) = table().split_for_parts();
    let json = finish(document).to_json().unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    let document = move || {
        let json = json.clone();
        async move { ([(header::CONTENT_TYPE, "application/json")], json) }
    };
    router
        .route("/api/v1/openapi.json", get(document))
        .route("/api/v1/ws", get(realtime::ws::upgrade))
        .route("/", get(super::assets::index))
        .route("/assets/{version}/{file}", get(super::assets::file))
        .fallback(|| async { AppError::NotFound })
        // The middleware every request passes, outermost first, as one
        // layer: each `Router::layer` call wraps every route in one more
        // boxed service, which a request clones and whose future it boxes
        // (ten calls were twenty allocations a request and the moves of ever
        // larger futures; glibc's allocator was 18% of the proxy's CPU).
        .layer(
            tower::ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(RequestIds::default()))
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(TraceLayer::new_for_http().make_span_with(request_span).on_failure(log_failure))
                .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, config.request_timeout()))
                .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::track))
                .layer(axum::middleware::from_fn_with_state(state.clone(), shed_load))
                .layer(DefaultBodyLimit::max(config.body_limit_bytes))
                // Outside the idempotency layer, so a replayed answer is
                // encoded for the request at hand; cached bodies come encoded
                // already (`compress`).
                .layer(
                    CompressionLayer::new().compress_when(
                        SizeAbove::new(256)
                            .and(NotForContentType::GRPC)
                            .and(NotForContentType::IMAGES)
                            .and(NotForContentType::SSE),
                    ),
                )
                .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::read_your_writes))
                .layer(axum::middleware::from_fn_with_state(state.clone(), super::idempotency::remember)),
        )
        .with_state(state)
}

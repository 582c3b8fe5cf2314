//! JSON responses whose body PostgreSQL (or the read cache) already built.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// 201 with the created resource.
pub fn created(json: String) -> Response {
    (StatusCode::CREATED, [(header::CONTENT_TYPE, "application/json")], json).into_response()
}

/// 200 with a JSON body PostgreSQL (or the read cache) produced.
pub fn ok_json(json: impl Into<axum::body::Body>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], json.into()).into_response()
}

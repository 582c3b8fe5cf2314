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

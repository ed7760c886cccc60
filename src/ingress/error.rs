//! The one place where ingress failures become HTTP answers. Client
//! mistakes are 4xx with a short JSON `{error, message}`; internal failures
//! are logged in detail by the caller and answered generically.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::extract::BodyError;
use super::split::SplitError;
use super::verify::VerifyError;

/// Everything the ingress can answer other than 200.
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error(transparent)]
    Split(#[from] SplitError),
    #[error("the journal is unavailable; retry later")]
    StoreUnavailable,
    #[error("no webhook source at this path")]
    NotFound,
    #[error("webhook sources accept POST only")]
    MethodNotAllowed,
}

impl IngressError {
    pub fn status(&self) -> StatusCode {
        match self {
            IngressError::Body(BodyError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            IngressError::Body(BodyError::Timeout) => StatusCode::REQUEST_TIMEOUT,
            IngressError::Body(BodyError::Read(_)) => StatusCode::BAD_REQUEST,
            IngressError::Verify(_) => StatusCode::UNAUTHORIZED,
            IngressError::Split(_) => StatusCode::BAD_REQUEST,
            IngressError::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            IngressError::NotFound => StatusCode::NOT_FOUND,
            IngressError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            IngressError::Body(b) => b.code(),
            IngressError::Verify(v) => v.code(),
            IngressError::Split(s) => s.code(),
            IngressError::StoreUnavailable => "store_unavailable",
            IngressError::NotFound => "not_found",
            IngressError::MethodNotAllowed => "method_not_allowed",
        }
    }
}

impl IntoResponse for IngressError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = Json(json!({ "error": self.code(), "message": self.to_string() }));
        let mut resp = (status, body).into_response();
        match self {
            IngressError::StoreUnavailable => {
                resp.headers_mut().insert(
                    http::header::RETRY_AFTER,
                    http::HeaderValue::from_static("5"),
                );
            }
            IngressError::MethodNotAllowed => {
                resp.headers_mut()
                    .insert(http::header::ALLOW, http::HeaderValue::from_static("POST"));
            }
            IngressError::Body(BodyError::TooLarge { .. } | BodyError::Timeout) => {
                // The rest of the body was never read: the connection cannot be reused.
                resp.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            _ => {}
        }
        resp
    }
}

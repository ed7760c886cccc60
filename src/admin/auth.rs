//! The admin API's bearer token. `/healthz`, `/readyz` and `/metrics` stay
//! open (probes and scrapers carry no token); everything under `/api`
//! needs `Authorization: Bearer <admin.token>`. Without a configured token
//! the API is off, and says so, rather than open.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq as _;

use super::api::ApiError;

/// The token the API compares against, or `None` when the API is off.
#[derive(Clone)]
pub struct Token(pub Option<Arc<str>>);

/// Lets a request through only with the right bearer token. The
/// comparison takes the same time wherever the first wrong byte is, so the
/// token cannot be guessed byte by byte from response times.
pub async fn require(State(token): State<Token>, req: Request, next: Next) -> Response {
    let Some(expected) = token.0 else {
        return ApiError::Disabled.into_response();
    };
    let presented = req
        .headers()
        .get_all(header::AUTHORIZATION)
        .iter()
        .collect::<Vec<_>>();
    let verdict = match presented.as_slice() {
        [] => Err(ApiError::MissingToken),
        [one] => match bearer(one) {
            Some(t) if bool::from(t.as_bytes().ct_eq(expected.as_bytes())) => Ok(()),
            Some(_) => Err(ApiError::BadToken),
            None => Err(ApiError::NotBearer),
        },
        // Never "any of": one request, one credential.
        _ => Err(ApiError::BadToken),
    };
    match verdict {
        Ok(()) => next.run(req).await,
        Err(e) => {
            let mut resp = e.into_response();
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"switchyard admin\""),
            );
            resp
        }
    }
}

/// The token of an `Authorization: Bearer <token>` value.
fn bearer(v: &HeaderValue) -> Option<&str> {
    let s = v.to_str().ok()?;
    let (scheme, rest) = s.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

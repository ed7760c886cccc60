//! Reading a request body within the source's cap and the server's body
//! timeout. A declared Content-Length above the cap is refused before a
//! byte is read; a chunked body is counted while it streams and refused the
//! moment it passes the cap, never truncated.

use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};

/// Why the body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the body is larger than this source accepts ({limit} bytes)")]
    TooLarge { limit: u64 },
    #[error("the body was not received within the body read timeout")]
    Timeout,
    #[error("the body could not be read: {0}")]
    Read(String),
}

impl BodyError {
    pub fn code(&self) -> &'static str {
        match self {
            BodyError::TooLarge { .. } => "body_too_large",
            BodyError::Timeout => "body_timeout",
            BodyError::Read(_) => "body_read_failed",
        }
    }
}

/// Reads the whole body, enforcing `limit` bytes and `timeout` overall.
pub async fn read_body(
    headers: &http::HeaderMap,
    body: Body,
    limit: u64,
    timeout: Duration,
) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge { limit });
    }
    let limited = Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    match tokio::time::timeout(timeout, limited.collect()).await {
        Err(_) => Err(BodyError::Timeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(BodyError::TooLarge { limit })
        }
        Ok(Err(e)) => Err(BodyError::Read(e.to_string())),
    }
}

//! `verify: hmac`: a generic HMAC-SHA256 over the raw body in a configured
//! header, with an optional prefix and a configured encoding (hex or base64).

use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::{Match, SignatureForm, Unverified, VerifyError, header_value, mac, matching_key};
use crate::config::{SignatureEncoding, SourceConfig};

pub(super) fn verify(src: &SourceConfig, req: &Unverified) -> Result<Match, VerifyError> {
    let sig = single(&req.headers, &src.hmac_header)?;
    let sig = sig
        .strip_prefix(src.hmac_prefix.as_str())
        .ok_or(VerifyError::BadSignature)?;
    let (bytes, form) = match src.signature_encoding {
        SignatureEncoding::Hex => (hex::decode(sig).ok(), SignatureForm::HexLower),
        SignatureEncoding::Base64 => (
            base64::engine::general_purpose::STANDARD.decode(sig).ok(),
            SignatureForm::Base64,
        ),
    };
    let bytes = bytes
        .filter(|b| b.len() == 32)
        .ok_or(VerifyError::BadSignature)?;
    let key = matching_key(&src.keys, &[&req.body], &bytes).ok_or(VerifyError::BadSignature)?;
    Ok(Match::signed(key, form))
}

/// Like `single_header` but for a configured (non-static) header name.
fn single<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, VerifyError> {
    let mut it = headers.get_all(name).iter();
    let first = it
        .next()
        .ok_or(VerifyError::MissingSignature("(configured header)"))?;
    if it.next().is_some() {
        return Err(VerifyError::DuplicateSignature("(configured header)"));
    }
    first
        .to_str()
        .map(str::trim)
        .map_err(|_| VerifyError::BadSignature)
}

pub(super) fn sign(src: &SourceConfig, key: &[u8], body: &[u8]) -> Vec<(HeaderName, HeaderValue)> {
    let m = mac(key, &[body]);
    let text = match src.signature_encoding {
        SignatureEncoding::Hex => hex::encode(m),
        SignatureEncoding::Base64 => base64::engine::general_purpose::STANDARD.encode(m),
    };
    let name = HeaderName::from_bytes(src.hmac_header.as_bytes()).expect("validated in config");
    vec![(name, header_value(format!("{}{text}", src.hmac_prefix)))]
}

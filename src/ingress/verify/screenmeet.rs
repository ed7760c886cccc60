//! `verify: screenmeet`: `x-signature` is HMAC-SHA256 of the raw body with
//! the organization's signing key; `x-signature-algo`, when present, must be
//! `sha256`. The public docs do not pin the text encoding, so hex (either
//! case) and base64 (standard or URL-safe), with an optional `sha256=`
//! prefix, are all accepted and the matching form is recorded.

use base64::Engine as _;
use http::{HeaderName, HeaderValue};

use super::{
    Match, Unverified, VerifyError, decode_signature, header_value, mac, matching_key,
    single_header,
};
use crate::config::{SignatureEncoding, SourceConfig};

const SIGNATURE: &str = "x-signature";
const ALGO: &str = "x-signature-algo";

pub(super) fn verify(src: &SourceConfig, req: &Unverified) -> Result<Match, VerifyError> {
    let algo = single_header(&req.headers, ALGO)
        .map_err(|_| VerifyError::UnsupportedAlgorithm("several values".into()))?;
    if let Some(a) = algo
        && !a.eq_ignore_ascii_case("sha256")
    {
        return Err(VerifyError::UnsupportedAlgorithm(
            a.chars().take(32).collect(),
        ));
    }
    let sig =
        single_header(&req.headers, SIGNATURE)?.ok_or(VerifyError::MissingSignature(SIGNATURE))?;
    let (bytes, form) = decode_signature(sig).ok_or(VerifyError::BadSignature)?;
    let key = matching_key(&src.keys, &[&req.body], &bytes).ok_or(VerifyError::BadSignature)?;
    Ok(Match::signed(key, form))
}

pub(super) fn sign(
    key: &[u8],
    body: &[u8],
    enc: SignatureEncoding,
) -> Vec<(HeaderName, HeaderValue)> {
    let m = mac(key, &[body]);
    let text = match enc {
        SignatureEncoding::Hex => hex::encode(m),
        SignatureEncoding::Base64 => base64::engine::general_purpose::STANDARD.encode(m),
    };
    vec![
        (HeaderName::from_static(SIGNATURE), header_value(text)),
        (
            HeaderName::from_static(ALGO),
            HeaderValue::from_static("sha256"),
        ),
    ]
}

//! `verify: github`: `X-Hub-Signature-256: sha256=<hex>` over the raw body;
//! `X-GitHub-Delivery` is the dedup key and `X-GitHub-Event` the event type.

use http::{HeaderName, HeaderValue};

use super::{
    Match, Unverified, VerifyError, decode_signature, header_value, mac, matching_key,
    single_header,
};
use crate::config::SourceConfig;

const SIGNATURE: &str = "x-hub-signature-256";

pub(super) fn verify(src: &SourceConfig, req: &Unverified) -> Result<Match, VerifyError> {
    let sig =
        single_header(&req.headers, SIGNATURE)?.ok_or(VerifyError::MissingSignature(SIGNATURE))?;
    let (bytes, form) = decode_signature(sig).ok_or(VerifyError::BadSignature)?;
    let key = matching_key(&src.keys, &[&req.body], &bytes).ok_or(VerifyError::BadSignature)?;
    let text = |name: &str| {
        req.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(200).collect::<String>())
    };
    let mut m = Match::signed(key, form);
    m.delivery_id = text("x-github-delivery");
    m.type_hint = text("x-github-event");
    Ok(m)
}

pub(super) fn sign(key: &[u8], body: &[u8]) -> Vec<(HeaderName, HeaderValue)> {
    let sig = format!("sha256={}", hex::encode(mac(key, &[body])));
    vec![(HeaderName::from_static(SIGNATURE), header_value(sig))]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example published in GitHub's "Validating webhook deliveries" guide.
    #[test]
    fn matches_githubs_published_example() {
        let sig = mac(b"It's a Secret to Everybody", &[b"Hello, World!"]);
        assert_eq!(
            hex::encode(sig),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }
}

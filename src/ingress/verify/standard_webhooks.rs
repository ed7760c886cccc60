//! `verify: standard-webhooks`: `webhook-signature: v1,<base64>` (several,
//! space-separated, any may match) over `{webhook-id}.{webhook-timestamp}.{body}`
//! with a `whsec_<base64>` key; the timestamp must be within `tolerance`
//! (default 5 minutes) of now, and `webhook-id` is the dedup key.

use base64::Engine as _;
use http::{HeaderName, HeaderValue};

use super::{
    Match, SignatureForm, Unverified, VerifyError, header_value, mac, matching_key, single_header,
};
use crate::config::SourceConfig;

const ID: &str = "webhook-id";
const TIMESTAMP: &str = "webhook-timestamp";
const SIGNATURE: &str = "webhook-signature";

pub(super) fn verify(
    src: &SourceConfig,
    req: &Unverified,
    now_secs: i64,
) -> Result<Match, VerifyError> {
    let sigs =
        single_header(&req.headers, SIGNATURE)?.ok_or(VerifyError::MissingSignature(SIGNATURE))?;
    let id = single_header(&req.headers, ID)?.ok_or(VerifyError::MissingHeader(ID))?;
    let ts_text =
        single_header(&req.headers, TIMESTAMP)?.ok_or(VerifyError::MissingHeader(TIMESTAMP))?;
    let ts: i64 = ts_text.parse().map_err(|_| VerifyError::StaleTimestamp)?;
    if ts.abs_diff(now_secs) > src.tolerance.as_secs() {
        return Err(VerifyError::StaleTimestamp);
    }
    let parts: [&[u8]; 5] = [id.as_bytes(), b".", ts_text.as_bytes(), b".", &req.body];
    for candidate in sigs.split(' ') {
        let Some(b64) = candidate.strip_prefix("v1,") else {
            continue;
        };
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(b64) else {
            continue;
        };
        if let Some(key) = matching_key(&src.keys, &parts, &bytes) {
            let mut m = Match::signed(key, SignatureForm::Base64);
            m.delivery_id = Some(id.to_owned());
            return Ok(m);
        }
    }
    Err(VerifyError::BadSignature)
}

/// Signs with a fresh message id derived from the body and time.
pub(super) fn sign(key: &[u8], body: &[u8], now_secs: i64) -> Vec<(HeaderName, HeaderValue)> {
    let id = format!(
        "msg_{}",
        &hex::encode(mac(key, &[body, &now_secs.to_be_bytes()]))[..24]
    );
    sign_with_id(key, body, &id, now_secs)
}

pub(crate) fn sign_with_id(
    key: &[u8],
    body: &[u8],
    id: &str,
    ts: i64,
) -> Vec<(HeaderName, HeaderValue)> {
    let ts = ts.to_string();
    let sig = mac(key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    vec![
        (HeaderName::from_static(ID), header_value(id.to_owned())),
        (HeaderName::from_static(TIMESTAMP), header_value(ts)),
        (
            HeaderName::from_static(SIGNATURE),
            header_value(format!(
                "v1,{}",
                base64::engine::general_purpose::STANDARD.encode(sig)
            )),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{KeyEncoding, VerifyKind, decode_key_for_tests};

    /// The test vector published with the Standard Webhooks specification.
    #[test]
    fn matches_the_specification_test_vector() {
        let key = decode_key_for_tests(
            VerifyKind::StandardWebhooks,
            KeyEncoding::Utf8,
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        );
        let h = sign_with_id(
            &key,
            br#"{"test": 2432232314}"#,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
        );
        assert_eq!(h[2].1, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}

//! The trust boundary. A request arrives [`Unverified`]; only
//! [`Verifier::verify`] can turn it into a [`Verified`] one, and only a
//! verified request can be split and journaled. Verifiers are a closed set,
//! one file each, matched without a wildcard so a new kind breaks the build
//! exactly where it must be handled.
//!
//! Every verifier compares MACs in constant time (`Mac::verify_slice`) and
//! tries every active key, reporting which label matched so the operator
//! can see when a rotated-out key stops being used.

mod github;
mod hmac_generic;
mod none;
mod screenmeet;
mod standard_webhooks;

use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;

use crate::config::{SigningKey, SourceConfig, VerifyKind};
use crate::domain::KeyLabel;

type HmacSha256 = Hmac<Sha256>;

/// A request whose origin is not yet known. Holds the exact body bytes.
pub struct Unverified {
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A request proven to come from the source. Constructed only here.
#[derive(Debug)]
pub struct Verified {
    body: Bytes,
    key: Option<KeyLabel>,
    form: SignatureForm,
    delivery_id: Option<String>,
    type_hint: Option<String>,
}

impl Verified {
    /// The exact bytes that were authenticated.
    pub fn body(&self) -> &Bytes {
        &self.body
    }
    /// The key label that matched (`None` only for `verify: none`).
    pub fn key(&self) -> Option<&KeyLabel> {
        self.key.as_ref()
    }
    /// How the signature was written.
    pub fn form(&self) -> SignatureForm {
        self.form
    }
    /// A sender-given delivery id (`webhook-id`, `X-GitHub-Delivery`), used as the dedup key.
    pub fn delivery_id(&self) -> Option<&str> {
        self.delivery_id.as_deref()
    }
    /// An event type given in a header rather than the body (`X-GitHub-Event`).
    pub fn type_hint(&self) -> Option<&str> {
        self.type_hint.as_deref()
    }
}

/// Which text encoding of the signature matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureForm {
    HexLower,
    HexUpper,
    Base64,
    Base64Url,
    Unsigned,
}

impl SignatureForm {
    /// Every form, in [`SignatureForm::index`] order.
    pub const ALL: [SignatureForm; 5] = [
        SignatureForm::HexLower,
        SignatureForm::HexUpper,
        SignatureForm::Base64,
        SignatureForm::Base64Url,
        SignatureForm::Unsigned,
    ];

    pub fn index(self) -> usize {
        match self {
            SignatureForm::HexLower => 0,
            SignatureForm::HexUpper => 1,
            SignatureForm::Base64 => 2,
            SignatureForm::Base64Url => 3,
            SignatureForm::Unsigned => 4,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SignatureForm::HexLower => "hex",
            SignatureForm::HexUpper => "HEX",
            SignatureForm::Base64 => "base64",
            SignatureForm::Base64Url => "base64url",
            SignatureForm::Unsigned => "unsigned",
        }
    }
}

/// Why a request was refused. Every variant is a 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing signature header {0}")]
    MissingSignature(&'static str),
    #[error("more than one {0} header; send exactly one")]
    DuplicateSignature(&'static str),
    #[error("unsupported signature algorithm {0:?} (expected sha256)")]
    UnsupportedAlgorithm(String),
    #[error("signature does not match the body with any configured key")]
    BadSignature,
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("webhook-timestamp is outside the accepted window")]
    StaleTimestamp,
}

impl VerifyError {
    /// The stable machine-readable code put in the JSON answer.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::MissingSignature(_) => "missing_signature",
            VerifyError::DuplicateSignature(_) => "duplicate_signature",
            VerifyError::UnsupportedAlgorithm(_) => "unsupported_algorithm",
            VerifyError::BadSignature => "bad_signature",
            VerifyError::MissingHeader(_) => "missing_header",
            VerifyError::StaleTimestamp => "stale_timestamp",
        }
    }
}

/// The verifier of one source.
pub struct Verifier<'a> {
    source: &'a SourceConfig,
}

impl<'a> Verifier<'a> {
    pub fn new(source: &'a SourceConfig) -> Self {
        Self { source }
    }

    /// Authenticates `req` at `now_secs` (Unix seconds; only timestamped schemes read it).
    pub fn verify(&self, req: Unverified, now_secs: i64) -> Result<Verified, VerifyError> {
        let m = match self.source.verify {
            VerifyKind::Screenmeet => screenmeet::verify(self.source, &req)?,
            VerifyKind::StandardWebhooks => standard_webhooks::verify(self.source, &req, now_secs)?,
            VerifyKind::Github => github::verify(self.source, &req)?,
            VerifyKind::Hmac => hmac_generic::verify(self.source, &req)?,
            VerifyKind::None => none::verify(&req),
        };
        Ok(Verified {
            body: req.body,
            key: m.key,
            form: m.form,
            delivery_id: m.delivery_id,
            type_hint: m.type_hint,
        })
    }

    /// The headers a sender would attach to `body` signed with `key`
    /// (`switchyard sign` / `send`, and tests).
    pub fn sign(
        &self,
        key: &[u8],
        body: &[u8],
        now_secs: i64,
        encoding: crate::config::SignatureEncoding,
    ) -> Vec<(HeaderName, HeaderValue)> {
        match self.source.verify {
            VerifyKind::Screenmeet => screenmeet::sign(key, body, encoding),
            VerifyKind::StandardWebhooks => standard_webhooks::sign(key, body, now_secs),
            VerifyKind::Github => github::sign(key, body),
            VerifyKind::Hmac => hmac_generic::sign(self.source, key, body),
            VerifyKind::None => Vec::new(),
        }
    }
}

/// What a verifier found, before it is wrapped into [`Verified`].
struct Match {
    key: Option<KeyLabel>,
    form: SignatureForm,
    delivery_id: Option<String>,
    type_hint: Option<String>,
}

impl Match {
    fn signed(key: &SigningKey, form: SignatureForm) -> Self {
        Self {
            key: Some(KeyLabel(key.label.clone())),
            form,
            delivery_id: None,
            type_hint: None,
        }
    }
}

/// The single value of header `name`: absent, or more than one, is an error.
fn single_header<'h>(
    headers: &'h HeaderMap,
    name: &'static str,
) -> Result<Option<&'h str>, VerifyError> {
    let mut it = headers.get_all(name).iter();
    let Some(first) = it.next() else {
        return Ok(None);
    };
    if it.next().is_some() {
        return Err(VerifyError::DuplicateSignature(name));
    }
    first
        .to_str()
        .map(|s| Some(s.trim()))
        .map_err(|_| VerifyError::BadSignature)
}

/// Decodes a signature written as hex (either case) or base64 (standard or
/// URL-safe, padded or not) into 32 bytes, remembering which form it was.
pub fn decode_signature(text: &str) -> Option<([u8; 32], SignatureForm)> {
    let text = text.strip_prefix("sha256=").unwrap_or(text);
    let mut out = [0u8; 32];
    if let Some((bytes, upper)) = decode_hex32(text) {
        let form = if upper {
            SignatureForm::HexUpper
        } else {
            SignatureForm::HexLower
        };
        return Some((bytes, form));
    }
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let try_engine = |e: &dyn Fn(&str) -> Result<Vec<u8>, base64::DecodeError>| {
        e(text).ok().filter(|v| v.len() == 32)
    };
    if let Some(v) =
        try_engine(&|t| STANDARD.decode(t)).or_else(|| try_engine(&|t| STANDARD_NO_PAD.decode(t)))
    {
        out.copy_from_slice(&v);
        return Some((out, SignatureForm::Base64));
    }
    if let Some(v) =
        try_engine(&|t| URL_SAFE.decode(t)).or_else(|| try_engine(&|t| URL_SAFE_NO_PAD.decode(t)))
    {
        out.copy_from_slice(&v);
        return Some((out, SignatureForm::Base64Url));
    }
    None
}

/// A hex digit's value per byte, with [`HEX_UPPER`] set for `A`–`F`, or
/// [`HEX_BAD`]: one table look-up per character and no branch on the digit,
/// because a signature's digits are random and defeat branch prediction.
const HEX: [u8; 256] = {
    let mut t = [HEX_BAD; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = (10 + i as u8) | HEX_UPPER;
        i += 1;
    }
    t
};
const HEX_UPPER: u8 = 0x10;
const HEX_BAD: u8 = 0x80;

/// 64 hex digits (either case) as 32 bytes, and whether any was upper case.
fn decode_hex32(text: &str) -> Option<([u8; 32], bool)> {
    let digits: &[u8; 64] = text.as_bytes().try_into().ok()?;
    let mut out = [0u8; 32];
    let mut flags = 0u8;
    for (o, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let (hi, lo) = (HEX[pair[0] as usize], HEX[pair[1] as usize]);
        flags |= hi | lo;
        *o = (hi & 0x0f) << 4 | (lo & 0x0f);
    }
    (flags & HEX_BAD == 0).then_some((out, flags & HEX_UPPER != 0))
}

/// HMAC-SHA256 of the concatenated `parts` under `key`.
pub fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// The first key whose MAC over `parts` equals `sig`, compared in constant time.
fn matching_key<'k>(keys: &'k [SigningKey], parts: &[&[u8]], sig: &[u8]) -> Option<&'k SigningKey> {
    keys.iter().find(|k| {
        let mut m = HmacSha256::new_from_slice(&k.bytes).expect("HMAC accepts any key length");
        for p in parts {
            m.update(p);
        }
        m.verify_slice(sig).is_ok()
    })
}

fn header_value(s: String) -> HeaderValue {
    HeaderValue::from_str(&s).expect("signatures are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_accepted_form_to_the_same_bytes() {
        let raw = [0xabu8; 32];
        let hexl = hex::encode(raw);
        let hexu = hexl.to_uppercase();
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        let b64u = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        assert_eq!(
            decode_signature(&hexl),
            Some((raw, SignatureForm::HexLower))
        );
        assert_eq!(
            decode_signature(&format!("sha256={hexu}")),
            Some((raw, SignatureForm::HexUpper))
        );
        assert_eq!(decode_signature(&b64), Some((raw, SignatureForm::Base64)));
        assert_eq!(decode_signature(&b64u).map(|x| x.0), Some(raw));
    }

    #[test]
    fn rejects_truncated_and_garbage_signatures() {
        let hexl = hex::encode([1u8; 32]);
        assert_eq!(decode_signature(&hexl[..63]), None);
        assert_eq!(decode_signature(""), None);
        assert_eq!(decode_signature("zz!!"), None);
        assert_eq!(decode_signature(&hex::encode([1u8; 31])), None);
    }

    #[test]
    fn the_hex_table_agrees_with_the_standard_library_on_every_byte() {
        let mut digits = hex::encode((0u8..32).collect::<Vec<_>>()).into_bytes();
        let want: Vec<u8> = (0u8..32).collect();
        assert_eq!(
            decode_hex32(std::str::from_utf8(&digits).unwrap())
                .unwrap()
                .0
                .to_vec(),
            want
        );
        for b in 0u8..=127 {
            for at in [0, 1, 30, 63] {
                let keep = digits[at];
                digits[at] = b;
                let text = std::str::from_utf8(&digits).unwrap();
                let got = decode_hex32(text);
                assert_eq!(got.is_some(), b.is_ascii_hexdigit(), "byte {b:#x} at {at}");
                if let Some((bytes, upper)) = got {
                    assert_eq!(bytes.to_vec(), hex::decode(text).unwrap());
                    assert_eq!(upper, b.is_ascii_uppercase());
                }
                digits[at] = keep;
            }
        }
    }

    #[test]
    fn hmac_sha256_matches_rfc4231_case_2() {
        let out = mac(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex::encode(out),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}

//! Splitting a verified body into events without re-encoding them: each
//! event keeps its exact bytes (a range of the body). Splitting with
//! borrowed raw values skips checks that a full parse makes, so each element
//! is scanned once more for what the rule engine could not read later:
//! nesting deeper than the source's limit, a lone UTF-16 surrogate escape,
//! or a number that is not a finite double.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::verify::Verified;
use crate::config::{BodyShape, SourceConfig};
use crate::domain::{DedupDigest, EventVerdict, SplitEvent};

/// Why a whole body cannot be split. Every variant is a 400 and the body is
/// quarantined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("the body is empty; expected a JSON array of events")]
    Empty,
    #[error("the body is not valid UTF-8")]
    InvalidUtf8,
    #[error("the body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("expected a JSON array of events, got {0}")]
    NotAnArray(&'static str),
    #[error("expected one JSON object, got {0}")]
    NotAnObject(&'static str),
    #[error("the batch is an empty array")]
    EmptyBatch,
    #[error("the body is nested too deeply to parse")]
    TooDeep,
}

impl SplitError {
    pub fn code(&self) -> &'static str {
        match self {
            SplitError::Empty => "empty_body",
            SplitError::InvalidUtf8 => "invalid_utf8",
            SplitError::InvalidJson(_) => "invalid_json",
            SplitError::NotAnArray(_) => "not_an_array",
            SplitError::NotAnObject(_) => "not_an_object",
            SplitError::EmptyBatch => "empty_batch",
            SplitError::TooDeep => "nesting_too_deep",
        }
    }
}

/// Splits `verified`'s body according to the source's body shape.
pub fn split(src: &SourceConfig, verified: &Verified) -> Result<Vec<SplitEvent>, SplitError> {
    let body = verified.body();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(SplitError::Empty);
    }
    let text = std::str::from_utf8(body).map_err(|_| SplitError::InvalidUtf8)?;
    let first = text.trim_start().as_bytes()[0];
    match src.body {
        BodyShape::Array => {
            if first != b'[' {
                // Still tell invalid JSON apart from valid JSON of the wrong kind.
                serde_json::from_str::<&RawValue>(text).map_err(json_error)?;
                return Err(SplitError::NotAnArray(kind_of(first)));
            }
            let elems: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| {
                // A body that fails to parse because it is absurdly deep gets
                // the more useful answer.
                if matches!(
                    check_element(text, src.max_depth),
                    Err(ElementProblem::TooDeep(_))
                ) {
                    SplitError::TooDeep
                } else {
                    json_error(e)
                }
            })?;
            if elems.is_empty() {
                return Err(SplitError::EmptyBatch);
            }
            Ok(elems
                .into_iter()
                .map(|raw| classify(src, verified, text, raw))
                .collect())
        }
        BodyShape::Object => {
            let raw: &RawValue = serde_json::from_str(text).map_err(json_error)?;
            if first != b'{' {
                return Err(SplitError::NotAnObject(kind_of(first)));
            }
            Ok(vec![classify(src, verified, text, raw)])
        }
    }
}

fn json_error(e: serde_json::Error) -> SplitError {
    let msg = e.to_string();
    if msg.contains("recursion limit") {
        SplitError::TooDeep
    } else {
        SplitError::InvalidJson(msg)
    }
}

fn kind_of(first: u8) -> &'static str {
    match first {
        b'{' => "an object",
        b'[' => "an array",
        b'"' => "a string",
        b't' | b'f' => "a boolean",
        b'n' => "null",
        _ => "a number",
    }
}

fn classify(src: &SourceConfig, verified: &Verified, body: &str, raw: &RawValue) -> SplitEvent {
    let s = raw.get();
    let start = s.as_ptr() as usize - body.as_ptr() as usize;
    let range = start..start + s.len();
    let verdict = match check_element(s, src.max_depth) {
        Err(problem) => EventVerdict::Rejected {
            reason: problem.to_string(),
        },
        Ok(()) => event_type(s, verified.type_hint()),
    };
    let digest = match (verified.delivery_id(), &verdict) {
        (Some(id), _) => DedupDigest::of_parts([b"delivery".as_slice(), id.as_bytes()]),
        (None, EventVerdict::Valid { .. }) if !src.dedup_fields.is_empty() => {
            fields_digest(s, &src.dedup_fields)
                .unwrap_or_else(|| DedupDigest::of_bytes(s.as_bytes()))
        }
        _ => DedupDigest::of_bytes(s.as_bytes()),
    };
    SplitEvent {
        range,
        verdict,
        digest,
    }
}

#[derive(Deserialize)]
struct TypeOnly<'a> {
    #[serde(rename = "type", borrow, default)]
    ty: Option<Cow<'a, str>>,
}

/// The event type: the header hint if the sender gives one, else the
/// element's string `type` field.
fn event_type(s: &str, hint: Option<&str>) -> EventVerdict {
    if !s.starts_with('{') {
        return EventVerdict::Rejected {
            reason: "not a JSON object".into(),
        };
    }
    if let Some(h) = hint.filter(|h| !h.is_empty()) {
        return EventVerdict::Valid {
            event_type: h.to_owned(),
        };
    }
    match serde_json::from_str::<TypeOnly>(s) {
        Ok(TypeOnly { ty: Some(t) }) if t.is_empty() => EventVerdict::Rejected {
            reason: "`type` is an empty string".into(),
        },
        Ok(TypeOnly { ty: Some(t) }) if t.len() > 200 => EventVerdict::Rejected {
            reason: "`type` is longer than 200 bytes".into(),
        },
        Ok(TypeOnly { ty: Some(t) }) => EventVerdict::Valid {
            event_type: t.into_owned(),
        },
        Ok(TypeOnly { ty: None }) => EventVerdict::Rejected {
            reason: "missing `type`".into(),
        },
        Err(e) if e.to_string().contains("duplicate field") => EventVerdict::Rejected {
            reason: "`type` appears more than once".into(),
        },
        Err(_) => EventVerdict::Rejected {
            reason: "`type` is not a string".into(),
        },
    }
}

/// Digest of the configured top-level fields' raw values, so a resend with
/// cosmetic differences (key order is not one of them) still deduplicates.
fn fields_digest(s: &str, fields: &[String]) -> Option<DedupDigest> {
    let map: HashMap<Cow<str>, &RawValue> = serde_json::from_str(s).ok()?;
    let parts: Vec<&[u8]> = fields
        .iter()
        .flat_map(|f| {
            let v = map
                .get(f.as_str())
                .map_or(b"\0absent".as_slice(), |r| r.get().as_bytes());
            [f.as_bytes(), v]
        })
        .collect();
    Some(DedupDigest::of_parts(parts))
}

/// What the element scan found wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElementProblem {
    #[error("nested deeper than {0} levels")]
    TooDeep(usize),
    #[error("lone surrogate \\u{0:04x} in a string")]
    LoneSurrogate(u32),
    #[error("number {0} is out of range for a 64-bit float")]
    NumberOutOfRange(String),
    #[error("malformed string: {0}")]
    BadString(&'static str),
}

/// Scans one syntactically valid JSON value for what a full parse would
/// refuse. Iterative, so depth costs no stack.
pub fn check_element(s: &str, max_depth: usize) -> Result<(), ElementProblem> {
    let b = s.as_bytes();
    let mut depth = 0usize;
    let mut i = 0usize;
    while i < b.len() {
        match b[i] {
            b'"' => i = scan_string(b, i + 1)?,
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    return Err(ElementProblem::TooDeep(max_depth));
                }
                i += 1;
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < b.len() && matches!(b[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                let num = &s[start..i];
                match num.parse::<f64>() {
                    Ok(f) if f.is_finite() => {}
                    _ => {
                        return Err(ElementProblem::NumberOutOfRange(
                            num.chars().take(40).collect(),
                        ));
                    }
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Scans a string body starting after its opening quote; returns the index
/// after the closing quote.
fn scan_string(b: &[u8], mut i: usize) -> Result<usize, ElementProblem> {
    // Jump to the next quote or backslash: event strings are long and plain.
    while let Some(skip) = memchr::memchr2(b'"', b'\\', &b[i.min(b.len())..]) {
        i += skip;
        match b[i] {
            b'"' => return Ok(i + 1),
            b'\\' if b.get(i + 1) == Some(&b'u') => {
                let cp = hex4(b, i + 2)?;
                i += 6;
                if (0xD800..0xDC00).contains(&cp) {
                    let low = if b.get(i) == Some(&b'\\') && b.get(i + 1) == Some(&b'u') {
                        hex4(b, i + 2)?
                    } else {
                        0
                    };
                    if !(0xDC00..0xE000).contains(&low) {
                        return Err(ElementProblem::LoneSurrogate(cp));
                    }
                    i += 6;
                } else if (0xDC00..0xE000).contains(&cp) {
                    return Err(ElementProblem::LoneSurrogate(cp));
                }
            }
            _ => i += 2,
        }
    }
    Err(ElementProblem::BadString("unterminated"))
}

fn hex4(b: &[u8], at: usize) -> Result<u32, ElementProblem> {
    let bad = ElementProblem::BadString("invalid \\u escape");
    let digits = b.get(at..at + 4).ok_or(bad.clone())?;
    let text = std::str::from_utf8(digits).map_err(|_| bad.clone())?;
    u32::from_str_radix(text, 16).map_err(|_| bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_limit_counts_arrays_and_objects() {
        assert!(check_element(r#"{"a":[{"b":1}]}"#, 3).is_ok());
        assert_eq!(
            check_element(r#"{"a":[{"b":[1]}]}"#, 3),
            Err(ElementProblem::TooDeep(3))
        );
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        assert!(check_element(r#"{"a":"[[[[[[\"]]"}"#, 1).is_ok());
    }

    #[test]
    fn lone_surrogates_are_refused_pairs_are_fine() {
        assert!(check_element(r#"{"a":"\ud83d\ude00"}"#, 8).is_ok());
        assert_eq!(
            check_element(r#"{"a":"\ud83d"}"#, 8),
            Err(ElementProblem::LoneSurrogate(0xd83d))
        );
        assert_eq!(
            check_element(r#"{"a":"\ude00x"}"#, 8),
            Err(ElementProblem::LoneSurrogate(0xde00))
        );
        assert!(check_element(r#"{"a":"\ud83d\u0041"}"#, 8).is_err());
    }

    #[test]
    fn escapes_far_into_long_strings_are_seen() {
        let pad = "x".repeat(5_000);
        let ok = format!(r#"{{"a":"{pad}\"{pad}\\","b":[[1]]}}"#);
        assert!(check_element(&ok, 3).is_ok());
        assert_eq!(check_element(&ok, 2), Err(ElementProblem::TooDeep(2)));
        let lone = format!(r#"{{"a":"{pad}\ud83d{pad}"}}"#);
        assert_eq!(
            check_element(&lone, 8),
            Err(ElementProblem::LoneSurrogate(0xd83d))
        );
        assert_eq!(
            check_element(&format!(r#""{pad}\"#), 8),
            Err(ElementProblem::BadString("unterminated"))
        );
    }

    #[test]
    fn infinite_numbers_are_refused() {
        assert_eq!(
            check_element(r#"{"a":1e400}"#, 8).unwrap_err().to_string(),
            "number 1e400 is out of range for a 64-bit float"
        );
        assert!(check_element(r#"{"a":-1.5e300,"b":123456789012345678901234567890}"#, 8).is_ok());
    }
}

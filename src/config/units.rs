//! Human units in config.yaml: sizes (`1MiB`, `512KiB`, `1000`) and
//! durations (`10s`, `5m`, `7d`), parsed strictly with a hint on failure.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A byte size such as `1MiB`; a bare number is bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Size(n)),
            Raw::S(s) => s
                .trim()
                .parse::<bytesize::ByteSize>()
                .map(|b| Size(b.as_u64()))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "invalid size {s:?} (expected e.g. 1MiB, 512KiB or a number of bytes)"
                    ))
                }),
        }
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes", self.0)
    }
}

/// A duration such as `30s`, `5m`, `7d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span(pub Duration);

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(s.trim()).map(Span).map_err(|_| {
            serde::de::Error::custom(format!(
                "invalid duration {s:?} (expected e.g. 500ms, 10s, 5m, 7d)"
            ))
        })
    }
}

//! Generic HTTP targets: `method` (default POST) to `base_url` + `path`,
//! the target's headers then the action's, a JSON body, and the action id
//! as `Idempotency-Key`. With `hmac_secret`, the body is signed like the
//! webhooks we receive: `sha256=<hex HMAC-SHA256>` in `hmac_header`
//! (default `x-switchyard-signature`), so the receiver can verify us.

use super::{Outcome, send};
use crate::config::TargetConfig;
use crate::store::delivery::Claimed;

pub(super) struct HttpTarget {
    base_url: String,
    headers: Vec<(String, String)>,
    signing: Option<(String, Vec<u8>)>,
}

impl HttpTarget {
    pub(super) fn from_target(t: &TargetConfig) -> Result<Self, String> {
        let base_url = t
            .setting("base_url")
            .ok_or_else(|| {
                format!(
                    "targets.{}.base_url is not set; actions wait until it is",
                    t.name
                )
            })?
            .trim_end_matches('/')
            .to_owned();
        let headers = t
            .settings
            .get("headers")
            .and_then(|h| h.as_object())
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        let signing = t.setting("hmac_secret").map(|secret| {
            (
                t.setting("hmac_header")
                    .unwrap_or("x-switchyard-signature")
                    .to_owned(),
                secret.as_bytes().to_vec(),
            )
        });
        Ok(Self {
            base_url,
            headers,
            signing,
        })
    }

    pub(super) async fn send(&self, client: &reqwest::Client, a: &Claimed) -> Outcome {
        let p = &a.payload;
        let method = p.get("method").and_then(|m| m.as_str()).unwrap_or("POST");
        let Ok(method) = reqwest::Method::from_bytes(method.as_bytes()) else {
            return Outcome::GiveUp {
                status: None,
                error: format!("invalid method {method:?}"),
            };
        };
        let path = p.get("path").and_then(|v| v.as_str()).unwrap_or("/");
        let mut req = client
            .request(method, format!("{}{path}", self.base_url))
            .header("idempotency-key", &a.id);
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        if let Some(h) = p.get("headers").and_then(|h| h.as_object()) {
            for (k, v) in h {
                if let Some(v) = v.as_str() {
                    req = req.header(k, v);
                }
            }
        }
        if let Some(json) = p.get("json") {
            let body = json.to_string();
            if let Some((header, key)) = &self.signing {
                let sig = crate::ingress::verify::mac(key, &[body.as_bytes()]);
                req = req.header(header, format!("sha256={}", hex::encode(sig)));
            }
            req = req.header("content-type", "application/json").body(body);
        }
        send(req).await
    }
}

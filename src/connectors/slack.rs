//! Slack incoming webhooks: `POST {text, blocks}` to the webhook URL. Slack
//! answers plain text: `ok`, or an error such as `invalid_payload`,
//! `channel_not_found`, `no_service` (given up, with that text), or 429 /
//! 5xx (retried). The webhook URL is a secret: it never appears in errors.

use super::{Outcome, classify, network_error, slack_escape};
use crate::config::TargetConfig;
use crate::store::delivery::Claimed;

pub(super) struct SlackWebhook {
    url: String,
}

impl SlackWebhook {
    /// The connector, or why the target cannot deliver yet.
    pub(super) fn from_target(t: &TargetConfig) -> Result<Self, String> {
        match t.setting("webhook_url") {
            Some(url) => Ok(Self {
                url: url.to_owned(),
            }),
            None if t.setting("token").is_some() => Err(format!(
                "targets.{}: Slack Web API (token) delivery is not built yet; use webhook_url",
                t.name
            )),
            None => Err(format!(
                "targets.{}.webhook_url is not set (e.g. SLACK_WEBHOOK_URL); actions wait until it is",
                t.name
            )),
        }
    }

    pub(super) async fn send(&self, client: &reqwest::Client, a: &Claimed) -> Outcome {
        let mut body = serde_json::Map::new();
        if let Some(text) = a.payload.get("text").and_then(|v| v.as_str()) {
            body.insert("text".into(), slack_escape(text).into());
        }
        if let Some(blocks) = a.payload.get("blocks") {
            body.insert("blocks".into(), blocks.clone());
        }
        match client.post(&self.url).json(&body).send().await {
            Ok(resp) => classify(resp).await,
            Err(e) => network_error(e),
        }
    }
}

//! Slack, two ways.
//!
//! - Incoming webhook (`webhook_url`): `POST {text, blocks}`; Slack answers
//!   plain text: `ok`, or an error such as `invalid_payload`,
//!   `channel_not_found`, `no_service` (given up, with that text), or
//!   429 / 5xx (retried). The URL is a secret: it never appears in errors.
//! - Web API (`token`): `chat.postMessage` to the action's `channel` or the
//!   target's. HTTP 200 with `ok: false` is a failure: `ratelimited`,
//!   `internal_error`, `fatal_error`, `service_unavailable` and
//!   `request_timeout` retry, anything else (`channel_not_found`,
//!   `invalid_auth`, ...) gives up. The message `ts` comes back as the
//!   reference, so later messages with the same `thread_key` reply in its
//!   thread.
//!
//! Text is escaped (`&`, `<`, `>`) so an event's words cannot mention anyone;
//! a rule that really wants a mention says `mentions: true`.

use serde_json::{Map, Value, json};

use super::{Outcome, classify, network_error, retry_after, send, slack_escape};
use crate::config::TargetConfig;
use crate::store::delivery::Claimed;

pub(super) enum Slack {
    Webhook {
        url: String,
    },
    Api {
        url: String,
        token: String,
        channel: Option<String>,
    },
}

const RETRYABLE: &[&str] = &[
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

impl Slack {
    /// The connector, or why the target cannot deliver yet.
    pub(super) fn from_target(t: &TargetConfig) -> Result<Self, String> {
        if let Some(url) = t.setting("webhook_url") {
            return Ok(Slack::Webhook {
                url: url.to_owned(),
            });
        }
        if let Some(token) = t.setting("token") {
            let api = t
                .setting("api_url")
                .unwrap_or("https://slack.com/api")
                .trim_end_matches('/');
            return Ok(Slack::Api {
                url: format!("{api}/chat.postMessage"),
                token: token.to_owned(),
                channel: t.setting("channel").map(str::to_owned),
            });
        }
        Err(format!(
            "targets.{}: neither webhook_url nor token is set (e.g. SLACK_WEBHOOK_URL); actions wait until one is",
            t.name
        ))
    }

    fn message(a: &Claimed) -> Map<String, Value> {
        let mut body = Map::new();
        if let Some(text) = a.payload.get("text").and_then(Value::as_str) {
            // `mentions: true` is the rule saying it means its <!here> / <@U123>.
            let raw = a.payload.get("mentions") == Some(&Value::Bool(true));
            let text = if raw {
                text.to_owned()
            } else {
                slack_escape(text)
            };
            body.insert("text".into(), text.into());
        }
        if let Some(blocks) = a.payload.get("blocks") {
            body.insert("blocks".into(), blocks.clone());
        }
        body
    }

    pub(super) async fn send(&self, client: &reqwest::Client, a: &Claimed) -> Outcome {
        match self {
            Slack::Webhook { url } => send(client.post(url).json(&Self::message(a))).await,
            Slack::Api {
                url,
                token,
                channel,
            } => {
                let mut body = Self::message(a);
                let Some(ch) = a
                    .payload
                    .get("channel")
                    .and_then(Value::as_str)
                    .or(channel.as_deref())
                else {
                    return Outcome::GiveUp {
                        status: None,
                        error: "no channel: give channel in the action or on the target".into(),
                    };
                };
                body.insert("channel".into(), json!(ch));
                if let Some(ts) = &a.thread_ts {
                    body.insert("thread_ts".into(), json!(ts));
                }
                let resp = match client.post(url).bearer_auth(token).json(&body).send().await {
                    Ok(r) => r,
                    Err(e) => return network_error(e),
                };
                if !resp.status().is_success() {
                    return classify(resp).await;
                }
                let after = retry_after(resp.headers());
                let status = Some(resp.status().as_u16());
                let answer: Value = match resp.json().await {
                    Ok(v) => v,
                    Err(e) => {
                        return Outcome::Retry {
                            status,
                            error: format!("unreadable answer: {}", e.without_url()),
                            after: None,
                            floor: false,
                        };
                    }
                };
                if answer["ok"] == json!(true) {
                    return Outcome::Delivered {
                        status,
                        excerpt: answer["ts"].as_str().unwrap_or("").to_owned(),
                        reference: answer["ts"].as_str().map(str::to_owned),
                    };
                }
                let error = answer["error"]
                    .as_str()
                    .unwrap_or("unknown_error")
                    .to_owned();
                if RETRYABLE.contains(&error.as_str()) {
                    Outcome::Retry {
                        status,
                        floor: error == "ratelimited",
                        error,
                        after,
                    }
                } else {
                    Outcome::GiveUp { status, error }
                }
            }
        }
    }
}

//! Connectors: one file per target kind. A connector builds the request
//! for an action and classifies the answer into an [`Outcome`]; it never
//! decides when to retry (the dispatcher does) and never touches the store.
//! All HTTP connectors share one client and one answer classification:
//! 2xx delivered; 408, 429, 5xx and network errors retry (with the answer's
//! `Retry-After`); any other 4xx gives up with the API's own error text.
//!
//! Secrets stay out of errors: client errors are stripped of their URL.

mod http;
mod jira;
mod pagerduty;
mod slack;
mod smtp;
mod tickets;

use std::collections::HashMap;
use std::time::Duration;

use crate::config::{Config, TargetConfig, TargetKind};
use crate::store::delivery::Claimed;

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `reference` is what the API named the thing it made (a Slack `ts`).
    Delivered {
        status: Option<u16>,
        excerpt: String,
        reference: Option<String>,
    },
    /// Worth another try; `after` is the server's `Retry-After`; `floor`
    /// asks for at least the configured floor (429, timeouts).
    Retry {
        status: Option<u16>,
        error: String,
        after: Option<Duration>,
        floor: bool,
    },
    GiveUp {
        status: Option<u16>,
        error: String,
    },
    /// The target is not configured (or not deliverable by this build).
    Held {
        reason: String,
    },
}

/// The connector of one target.
enum Connector {
    Slack(slack::Slack),
    Jira(jira::Jira),
    PagerDuty(pagerduty::PagerDuty),
    Smtp(smtp::Smtp),
    Tickets(tickets::TicketApi),
    Http(http::HttpTarget),
    Held(String),
}

/// Every target's connector, sharing one HTTP client.
pub struct Connectors {
    client: reqwest::Client,
    by_target: HashMap<String, (Connector, TargetConfig)>,
}

/// The most of an answer body read and kept.
const EXCERPT: usize = 64 * 1024;

impl Connectors {
    pub fn new(config: &Config) -> Connectors {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                // Never follow a redirect to another host: credentials would go with it.
                let same_host = attempt.previous().first().map(|u| u.host_str())
                    == Some(attempt.url().host_str());
                if attempt.previous().len() < 3 && same_host {
                    attempt.follow()
                } else {
                    attempt.stop()
                }
            }))
            .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client builds");
        let by_target =
            config
                .targets
                .iter()
                .map(|(name, t)| {
                    let c =
                        match t.kind {
                            TargetKind::Slack => slack::Slack::from_target(t)
                                .map_or_else(Connector::Held, Connector::Slack),
                            TargetKind::Http => http::HttpTarget::from_target(t)
                                .map_or_else(Connector::Held, Connector::Http),
                            TargetKind::Jira => jira::Jira::from_target(t)
                                .map_or_else(Connector::Held, Connector::Jira),
                            TargetKind::Pagerduty => pagerduty::PagerDuty::from_target(t)
                                .map_or_else(Connector::Held, Connector::PagerDuty),
                            TargetKind::Smtp => smtp::Smtp::from_target(t)
                                .map_or_else(Connector::Held, Connector::Smtp),
                            TargetKind::Servicenow | TargetKind::Zendesk | TargetKind::Github => {
                                tickets::TicketApi::from_target(t)
                                    .map_or_else(Connector::Held, Connector::Tickets)
                            }
                        };
                    (name.clone(), (c, t.clone()))
                })
                .collect();
        Connectors { client, by_target }
    }

    /// Why each target that cannot deliver yet is holding its actions.
    pub fn held(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .by_target
            .iter()
            .filter_map(|(name, (c, _))| match c {
                Connector::Held(reason) => Some((name.clone(), reason.clone())),
                _ => None,
            })
            .collect();
        out.sort();
        out
    }

    /// Every configured target's name.
    pub fn names(&self) -> Vec<String> {
        self.by_target.keys().cloned().collect()
    }

    /// The longest send timeout of any target.
    pub fn longest_timeout(&self) -> Duration {
        self.by_target
            .values()
            .map(|(_, t)| t.delivery.timeout.0)
            .max()
            .unwrap_or(Duration::from_secs(10))
    }

    /// The target's delivery settings, if it exists.
    pub fn target(&self, name: &str) -> Option<&TargetConfig> {
        self.by_target.get(name).map(|(_, t)| t)
    }

    /// One attempt for `action`, bounded by its target's timeout.
    pub async fn send(&self, action: &Claimed) -> Outcome {
        let Some((connector, target)) = self.by_target.get(&action.target) else {
            return Outcome::Held {
                reason: format!("target {:?} is not in config.yaml", action.target),
            };
        };
        let timeout = target.delivery.timeout.0;
        let attempt = async {
            match connector {
                Connector::Slack(s) => s.send(&self.client, action).await,
                Connector::Http(h) => h.send(&self.client, action).await,
                Connector::Jira(j) => j.send(&self.client, action).await,
                Connector::PagerDuty(p) => p.send(&self.client, action).await,
                Connector::Smtp(m) => m.send(action).await,
                Connector::Tickets(t) => t.send(&self.client, action).await,
                Connector::Held(reason) => Outcome::Held {
                    reason: reason.clone(),
                },
            }
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(o) => o,
            Err(_) => Outcome::Retry {
                status: None,
                error: format!("no answer within {timeout:?}"),
                after: None,
                floor: true,
            },
        }
    }
}

/// The shared classification of an HTTP answer.
pub(crate) async fn classify(resp: reqwest::Response) -> Outcome {
    let status = resp.status();
    let after = retry_after(resp.headers());
    let excerpt = read_capped(resp).await;
    let code = Some(status.as_u16());
    if status.is_success() {
        Outcome::Delivered {
            status: code,
            excerpt,
            reference: None,
        }
    } else if status.as_u16() == 408 || status.as_u16() == 429 || status.is_server_error() {
        Outcome::Retry {
            status: code,
            error: format!("{status}: {}", first_line(&excerpt)),
            after,
            floor: status.as_u16() == 429,
        }
    } else {
        Outcome::GiveUp {
            status: code,
            error: format!("{status}: {}", first_line(&excerpt)),
        }
    }
}

/// Sends a request and classifies the answer: the one-step form every
/// connector uses for its final call.
pub(crate) async fn send(req: reqwest::RequestBuilder) -> Outcome {
    match req.send().await {
        Ok(r) => classify(r).await,
        Err(e) => network_error(e),
    }
}

/// Sends a request; a 2xx answer's JSON body (or `null`), anything else as
/// the [`Outcome`] the shared classification gives it.
pub(crate) async fn send_json(req: reqwest::RequestBuilder) -> Result<serde_json::Value, Outcome> {
    match req.send().await {
        Ok(r) if r.status().is_success() => Ok(r.json().await.unwrap_or(serde_json::Value::Null)),
        Ok(r) => Err(classify(r).await),
        Err(e) => Err(network_error(e)),
    }
}

/// A network failure: always worth another try; the URL (which may hold a
/// secret, like a Slack webhook) is removed from the text.
pub(crate) fn network_error(e: reqwest::Error) -> Outcome {
    let timeout = e.is_timeout();
    Outcome::Retry {
        status: None,
        error: e.without_url().to_string(),
        after: None,
        floor: timeout,
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub(crate) fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// Reads at most [`EXCERPT`] bytes of the body; a huge answer is not buffered.
async fn read_capped(mut resp: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = EXCERPT.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() >= EXCERPT {
            break;
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(500).collect()
}

/// A label carrying an upsert key: labels cannot hold spaces or most
/// punctuation, so anything but letters, digits, `-`, `_`, `.` becomes `_`.
pub(crate) fn key_label(prefix: &str, key: &str) -> String {
    let clean: String = key
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{prefix}{clean}")
}

/// Text from an event, made inert for Slack: `&`, `<`, `>` escaped, so a
/// label saying `<!channel>` cannot ping a whole channel.
pub fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

//! PagerDuty Events API v2: `trigger` / `acknowledge` / `resolve` with the
//! ticket's `key` (or the action id) as `dedup_key`, so retries and
//! follow-ups address the same incident.

use serde_json::{Value, json};

use super::{Outcome, send};
use crate::config::TargetConfig;
use crate::store::delivery::Claimed;

pub(super) struct PagerDuty {
    url: String,
    routing_key: String,
}

impl PagerDuty {
    pub(super) fn from_target(t: &TargetConfig) -> Result<Self, String> {
        let routing_key = t
            .setting("routing_key")
            .ok_or_else(|| format!("targets.{}.routing_key is not set (e.g. PD_ROUTING_KEY); actions wait until it is", t.name))?
            .to_owned();
        let api = t
            .setting("api_url")
            .unwrap_or("https://events.pagerduty.com")
            .trim_end_matches('/');
        Ok(Self {
            url: format!("{api}/v2/enqueue"),
            routing_key,
        })
    }

    pub(super) async fn send(&self, client: &reqwest::Client, a: &Claimed) -> Outcome {
        let p = &a.payload;
        let action = p.get("action").and_then(Value::as_str).unwrap_or("trigger");
        let dedup_key = p.get("key").and_then(Value::as_str).unwrap_or(&a.id);
        let severity = match p
            .get("priority")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("critical" | "highest" | "p1") => "critical",
            Some("high" | "p2" | "error") => "error",
            Some("medium" | "p3" | "warning") => "warning",
            Some("low" | "lowest" | "p4" | "p5" | "info") => "info",
            _ => "error",
        };
        let mut event = json!({
            "routing_key": self.routing_key,
            "event_action": action,
            "dedup_key": dedup_key,
        });
        if action == "trigger" {
            event["payload"] = json!({
                "summary": p.get("title").and_then(Value::as_str).unwrap_or("(no title)"),
                "source": "switchyard",
                "severity": severity,
                "custom_details": { "body": p.get("body"), "labels": p.get("labels") },
            });
        }
        send(client.post(&self.url).json(&event)).await
    }
}

//! ServiceNow, Zendesk and GitHub issues: the same upsert shape as Jira,
//! with each API's own idempotency handle. A ticket with a `key` looks for
//! an open record carrying it (ServiceNow `correlation_id`, Zendesk
//! `external_id`, a GitHub label marker); found, the body is added as a
//! note or comment; not found, a record is created carrying the key.

use base64::Engine as _;
use serde_json::{Value, json};

use super::{Outcome, send, send_json};
use crate::config::{TargetConfig, TargetKind};
use crate::store::delivery::Claimed;

pub(super) struct TicketApi {
    kind: TargetKind,
    base: String,
    auth: String,
    /// ServiceNow table, or GitHub `owner/repo`.
    place: String,
}

fn need<'a>(t: &'a TargetConfig, k: &str) -> Result<&'a str, String> {
    t.setting(k).ok_or_else(|| {
        format!(
            "targets.{}.{k} is not set; actions wait until it is",
            t.name
        )
    })
}

fn basic(user: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"))
    )
}

impl TicketApi {
    pub(super) fn from_target(t: &TargetConfig) -> Result<Self, String> {
        let (base, auth, place) = match t.kind {
            TargetKind::Servicenow => (
                need(t, "base_url")?.to_owned(),
                basic(need(t, "username")?, need(t, "password")?),
                t.setting("table").unwrap_or("incident").to_owned(),
            ),
            TargetKind::Zendesk => (
                need(t, "base_url")?.to_owned(),
                basic(
                    &format!("{}/token", need(t, "email")?),
                    need(t, "api_token")?,
                ),
                String::new(),
            ),
            TargetKind::Github => (
                t.setting("api_url")
                    .unwrap_or("https://api.github.com")
                    .to_owned(),
                format!("Bearer {}", need(t, "token")?),
                need(t, "repo")?.to_owned(),
            ),
            other => {
                return Err(format!(
                    "{} is not a ticket API of this kind",
                    other.as_str()
                ));
            }
        };
        Ok(Self {
            kind: t.kind,
            base: base.trim_end_matches('/').to_owned(),
            auth,
            place,
        })
    }

    pub(super) async fn send(&self, client: &reqwest::Client, a: &Claimed) -> Outcome {
        let p = &a.payload;
        let title = p
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or("(no title)");
        let body = p.get("body").and_then(Value::as_str).unwrap_or("");
        let key = p.get("key").and_then(Value::as_str);
        let get = |url: String| {
            client
                .get(url)
                .header("authorization", &self.auth)
                .header("accept", "application/json")
        };
        let with_body = |m: reqwest::Method, url: String, v: Value| {
            client
                .request(m, url)
                .header("authorization", &self.auth)
                .header("accept", "application/json")
                .json(&v)
        };
        let existing = match key {
            None => None,
            Some(k) => {
                let url = match self.kind {
                    TargetKind::Servicenow => format!(
                        "{}/api/now/table/{}?sysparm_query=correlation_id={k}^active=true&sysparm_limit=1&sysparm_fields=sys_id",
                        self.base, self.place
                    ),
                    TargetKind::Zendesk => format!(
                        "{}/api/v2/search.json?query=type:ticket%20external_id:{k}%20status<solved",
                        self.base
                    ),
                    _ => format!(
                        "{}/repos/{}/issues?state=open&labels={}",
                        self.base,
                        self.place,
                        marker(k)
                    ),
                };
                let found = match send_json(get(url)).await {
                    Ok(v) => v,
                    Err(o) => return o,
                };
                match self.kind {
                    TargetKind::Servicenow => {
                        found["result"][0]["sys_id"].as_str().map(str::to_owned)
                    }
                    TargetKind::Zendesk => {
                        found["results"][0]["id"].as_i64().map(|i| i.to_string())
                    }
                    _ => found[0]["number"].as_i64().map(|i| i.to_string()),
                }
            }
        };
        let req = match (self.kind, existing) {
            (TargetKind::Servicenow, Some(id)) => with_body(
                reqwest::Method::PATCH,
                format!("{}/api/now/table/{}/{id}", self.base, self.place),
                json!({ "work_notes": body }),
            ),
            (TargetKind::Servicenow, None) => with_body(
                reqwest::Method::POST,
                format!("{}/api/now/table/{}", self.base, self.place),
                json!({ "short_description": title, "description": body, "correlation_id": key.unwrap_or(&a.id) }),
            ),
            (TargetKind::Zendesk, Some(id)) => with_body(
                reqwest::Method::PUT,
                format!("{}/api/v2/tickets/{id}.json", self.base),
                json!({ "ticket": { "comment": { "body": body } } }),
            ),
            (TargetKind::Zendesk, None) => with_body(
                reqwest::Method::POST,
                format!("{}/api/v2/tickets.json", self.base),
                json!({ "ticket": {
                    "subject": title,
                    "comment": { "body": body },
                    "external_id": key.unwrap_or(&a.id),
                    "tags": p.get("labels").cloned().unwrap_or(json!([])),
                } }),
            ),
            (_, Some(number)) => with_body(
                reqwest::Method::POST,
                format!(
                    "{}/repos/{}/issues/{number}/comments",
                    self.base, self.place
                ),
                json!({ "body": body }),
            ),
            (_, None) => {
                let mut labels: Vec<Value> = p
                    .get("labels")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if let Some(k) = key {
                    labels.push(marker(k).into());
                }
                with_body(
                    reqwest::Method::POST,
                    format!("{}/repos/{}/issues", self.base, self.place),
                    json!({ "title": title, "body": body, "labels": labels }),
                )
            }
        };
        send(req.header("idempotency-key", &a.id)).await
    }
}

/// The label that marks a GitHub issue as the one for `key`.
fn marker(key: &str) -> String {
    super::key_label("switchyard:", key)
}

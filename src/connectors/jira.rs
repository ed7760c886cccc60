//! Jira Cloud (REST v3). A ticket with a `key` is an upsert: the issue
//! carries a marker label derived from the key; before creating, an open
//! issue with that label is searched for, and if found the body becomes a
//! comment on it. So a retry after a create whose answer was lost (a
//! timeout after Jira created the issue) adds a comment, not a second issue.
//! Descriptions and comments are Atlassian Document Format.

use base64::Engine as _;
use serde_json::{Value, json};

use super::{Outcome, send, send_json};
use crate::config::TargetConfig;
use crate::store::delivery::Claimed;

pub(super) struct Jira {
    base_url: String,
    auth: String,
    project: String,
    issue_type: String,
}

impl Jira {
    pub(super) fn from_target(t: &TargetConfig) -> Result<Self, String> {
        let need = |k: &str| {
            t.setting(k).map(str::to_owned).ok_or_else(|| {
                format!(
                    "targets.{}.{k} is not set; actions wait until it is",
                    t.name
                )
            })
        };
        let (base_url, email, token, project) = (
            need("base_url")?,
            need("email")?,
            need("api_token")?,
            need("project")?,
        );
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            auth: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{email}:{token}"))
            ),
            project,
            issue_type: t.setting("issue_type").unwrap_or("Task").to_owned(),
        })
    }

    pub(super) async fn send(&self, client: &reqwest::Client, a: &Claimed) -> Outcome {
        let p = &a.payload;
        let body = p.get("body").and_then(Value::as_str).unwrap_or("");
        let marker = p.get("key").and_then(Value::as_str).map(marker_label);
        let post = |path: &str, v: Value| {
            client
                .post(format!("{}/rest/api/3/{path}", self.base_url))
                .header("authorization", &self.auth)
                .json(&v)
        };
        if let Some(m) = &marker {
            let jql = format!(
                "project = \"{}\" AND labels = \"{m}\" AND statusCategory != Done ORDER BY created ASC",
                self.project
            );
            let found = match send_json(post(
                "search/jql",
                json!({ "jql": jql, "fields": ["summary"], "maxResults": 1 }),
            ))
            .await
            {
                Ok(v) => v,
                Err(o) => return o,
            };
            if let Some(key) = found["issues"][0]["key"].as_str() {
                return send(post(
                    &format!("issue/{key}/comment"),
                    json!({ "body": adf(body) }),
                ))
                .await;
            }
        }
        let mut labels: Vec<Value> = p
            .get("labels")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(m) = marker {
            labels.push(m.into());
        }
        let mut fields = json!({
            "project": { "key": self.project },
            "issuetype": { "name": self.issue_type },
            "summary": p.get("title").and_then(Value::as_str).unwrap_or("(no title)"),
            "description": adf(body),
            "labels": labels,
        });
        if let Some(pr) = p.get("priority").and_then(Value::as_str) {
            fields["priority"] = json!({ "name": pr });
        }
        if let Some(extra) = p.get("fields").and_then(Value::as_object) {
            for (k, v) in extra {
                fields[k] = v.clone();
            }
        }
        send(post("issue", json!({ "fields": fields }))).await
    }
}

/// A Jira label for an upsert key.
fn marker_label(key: &str) -> String {
    super::key_label("switchyard-", key)
}

/// Plain text as an Atlassian Document Format document, one paragraph per
/// blank-line-separated block.
fn adf(text: &str) -> Value {
    let paragraphs: Vec<Value> = text
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| json!({ "type": "paragraph", "content": [ { "type": "text", "text": p } ] }))
        .collect();
    json!({ "type": "doc", "version": 1, "content": paragraphs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_valid_labels() {
        assert_eq!(
            marker_label("screenmeet-Ab3 dE9/x"),
            "switchyard-screenmeet-Ab3_dE9_x"
        );
    }

    #[test]
    fn adf_has_one_paragraph_per_block() {
        let d = adf("one\n\ntwo");
        assert_eq!(d["content"].as_array().unwrap().len(), 2);
        assert_eq!(d["content"][1]["content"][0]["text"], "two");
    }
}

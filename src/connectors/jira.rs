//! Jira Cloud (REST v3). A ticket with a `key` is an upsert: the issue
//! carries a marker label derived from the key; before creating, an open
//! issue with that label is searched for, and if found the body becomes a
//! comment on it. So a retry after a create whose answer was lost (a
//! timeout after Jira created the issue) adds a comment, not a second issue.
//! Descriptions and comments are Atlassian Document Format.

use base64::Engine as _;
use serde_json::{Value, json};

use super::{Outcome, classify, network_error};
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
        if let Some(m) = &marker {
            let jql = format!(
                "project = \"{}\" AND labels = \"{m}\" AND statusCategory != Done ORDER BY created ASC",
                self.project
            );
            let found = client
                .post(format!("{}/rest/api/3/search/jql", self.base_url))
                .header("authorization", &self.auth)
                .json(&json!({ "jql": jql, "fields": ["summary"], "maxResults": 1 }))
                .send()
                .await;
            let resp = match found {
                Ok(r) if r.status().is_success() => r,
                Ok(r) => return classify(r).await,
                Err(e) => return network_error(e),
            };
            let existing = resp
                .json::<Value>()
                .await
                .ok()
                .and_then(|v| v["issues"][0]["key"].as_str().map(str::to_owned));
            if let Some(key) = existing {
                let comment = client
                    .post(format!("{}/rest/api/3/issue/{key}/comment", self.base_url))
                    .header("authorization", &self.auth)
                    .json(&json!({ "body": adf(body) }))
                    .send()
                    .await;
                return match comment {
                    Ok(r) => classify(r).await,
                    Err(e) => network_error(e),
                };
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
        match client
            .post(format!("{}/rest/api/3/issue", self.base_url))
            .header("authorization", &self.auth)
            .json(&json!({ "fields": fields }))
            .send()
            .await
        {
            Ok(r) => classify(r).await,
            Err(e) => network_error(e),
        }
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

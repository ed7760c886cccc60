//! Rules: the operator's Rhai scripts, one set per version of `rules/`.
//!
//! `rules/<type>.rhai` and `rules/<type>/*.rhai` run for events of that exact
//! type, `rules/_any.rhai` and `rules/_any/*.rhai` for every event. Each file
//! defines `fn on_event(event)`. A [`RuleSet`] is compiled as a whole and
//! swapped as a whole (see [`reload`]); evaluating an event is pure: it
//! returns the actions the rules want, and the state they touched, without
//! any I/O.

mod api;
pub mod cases;
mod engine;
pub mod reload;
mod set;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::TargetKind;
pub use engine::build as build_engine;
pub use set::{LoadError, RuleFile, RuleSet, fingerprint};

/// The four action functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    Slack,
    Ticket,
    Email,
    Http,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Slack => "slack",
            ActionKind::Ticket => "ticket",
            ActionKind::Email => "email",
            ActionKind::Http => "http",
        }
    }

    /// Whether a target of kind `t` can carry this action.
    pub fn accepts(self, t: TargetKind) -> bool {
        match self {
            ActionKind::Slack => t == TargetKind::Slack,
            ActionKind::Ticket => matches!(
                t,
                TargetKind::Jira
                    | TargetKind::Pagerduty
                    | TargetKind::Servicenow
                    | TargetKind::Zendesk
                    | TargetKind::Github
            ),
            ActionKind::Email => t == TargetKind::Smtp,
            ActionKind::Http => t == TargetKind::Http,
        }
    }

    pub(crate) fn target_kinds(self) -> &'static str {
        match self {
            ActionKind::Slack => "a slack target",
            ActionKind::Ticket => "a jira, pagerduty, servicenow, zendesk or github target",
            ActionKind::Email => "an smtp target",
            ActionKind::Http => "an http target",
        }
    }
}

/// What a rule asked for. The dispatcher carries it out later.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionIntent {
    pub rule: String,
    pub target: String,
    pub action: ActionKind,
    pub payload: serde_json::Value,
}

/// One durable rule-state key: hits counted until `until` (ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateEntry {
    pub until: i64,
    pub count: i64,
}

/// Rule state as seen by evaluation (`once`, `count`).
#[derive(Clone, Debug, Default)]
pub struct StateMap(pub HashMap<String, StateEntry>);

/// How one rule file fared on one event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleRun {
    pub rule: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip: Option<String>,
}

/// The visible end state of an evaluated event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Rules ran and none failed (they may have planned nothing, or skipped).
    Routed,
    /// No rule file matches the event's type.
    NoRule,
    /// At least one rule failed; the others' actions are still planned.
    RuleError,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Routed => "routed",
            Outcome::NoRule => "no_rule",
            Outcome::RuleError => "rule_error",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of evaluating one event with one rule set.
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub version: Arc<str>,
    pub outcome: Outcome,
    pub rules: Vec<RuleRun>,
    pub actions: Vec<ActionIntent>,
    /// Rule-state keys written, to persist with the actions.
    pub state_writes: Vec<(String, StateEntry)>,
}

/// The error for a target name config.yaml does not define, listing those it does.
pub(crate) fn unknown_target<'a>(target: &str, names: impl Iterator<Item = &'a String>) -> String {
    let mut names: Vec<&str> = names.map(String::as_str).collect();
    names.sort_unstable();
    let known = if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    };
    format!("unknown target {target:?} (targets in config.yaml: {known})")
}

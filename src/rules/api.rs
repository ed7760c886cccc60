//! The script API. Action functions (`slack`, `ticket`, `email`, `http`)
//! only record intents in the evaluation context; nothing leaves the process
//! from a script. Helpers cover time (integers of milliseconds), text and
//! durable rule state (`once`, `count`).
//!
//! The context lives in a thread-local for the length of one rule call:
//! evaluation runs on a blocking thread, one rule at a time per thread.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use rhai::{Dynamic, Engine, EvalAltResult, ImmutableString, Map, Position};
use serde_json::Value;

use super::{ActionIntent, ActionKind, StateEntry, StateMap};
use crate::config::TargetKind;

/// What a rule call may read and what it records.
pub(super) struct Ctx {
    pub rule: String,
    pub targets: Arc<HashMap<String, TargetKind>>,
    pub now_ms: i64,
    pub actions: Vec<ActionIntent>,
    pub skip: Option<String>,
    pub state: StateMap,
    pub state_writes: Vec<(String, StateEntry)>,
    /// Previous values of the keys written, to undo a failed rule's writes.
    pub undo: Vec<(String, Option<StateEntry>)>,
}

thread_local! {
    static CTX: RefCell<Option<Ctx>> = const { RefCell::new(None) };
}

/// Installs `ctx` for the duration of `f`, and returns it with what was recorded.
pub(super) fn with_ctx<T>(ctx: Ctx, f: impl FnOnce() -> T) -> (T, Ctx) {
    CTX.with(|c| *c.borrow_mut() = Some(ctx));
    let out = f();
    let ctx = CTX
        .with(|c| c.borrow_mut().take())
        .expect("context installed above");
    (out, ctx)
}

fn with<T>(f: impl FnOnce(&mut Ctx) -> T) -> Result<T, Box<EvalAltResult>> {
    CTX.with(|c| match c.borrow_mut().as_mut() {
        Some(ctx) => Ok(f(ctx)),
        None => Err(err(
            "this function is only available while a rule handles an event",
        )),
    })
}

/// The rule running on this thread, for log lines.
pub(super) fn current_rule() -> String {
    CTX.with(|c| {
        c.borrow()
            .as_ref()
            .map(|x| x.rule.clone())
            .unwrap_or_default()
    })
}

fn err(msg: impl Into<String>) -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(Dynamic::from(msg.into()), Position::NONE).into()
}

type R<T> = Result<T, Box<EvalAltResult>>;

pub(super) fn register(engine: &mut Engine) {
    engine.register_fn("slack", |target: &str, text: ImmutableString| {
        let mut m = Map::new();
        m.insert("text".into(), text.into());
        record(ActionKind::Slack, target, m)
    });
    engine.register_fn("slack", |target: &str, m: Map| {
        record(ActionKind::Slack, target, m)
    });
    engine.register_fn("slack", |_: &str, other: Dynamic| -> R<()> {
        Err(err(format!(
            "slack() takes a text string or a map #{{text, blocks, channel, thread_key}}, not {}",
            other.type_name()
        )))
    });
    engine.register_fn("ticket", |target: &str, m: Map| {
        record(ActionKind::Ticket, target, m)
    });
    engine.register_fn("email", |target: &str, m: Map| {
        record(ActionKind::Email, target, m)
    });
    engine.register_fn("http", |target: &str, m: Map| {
        record(ActionKind::Http, target, m)
    });
    for name in ["ticket", "email", "http"] {
        engine.register_fn(name, move |_: &str, other: Dynamic| -> R<()> {
            Err(err(format!(
                "{name}() takes a map #{{...}} as its second argument, not {}",
                other.type_name()
            )))
        });
    }

    engine.register_fn("log", |level: &str, msg: &str| -> R<()> {
        let rule = current_rule();
        match level {
            "error" => tracing::error!(%rule, "{msg}"),
            "warn" => tracing::warn!(%rule, "{msg}"),
            "info" => tracing::info!(%rule, "{msg}"),
            "debug" => tracing::debug!(%rule, "{msg}"),
            other => {
                return Err(err(format!(
                    "log level {other:?} is not one of error, warn, info, debug"
                )));
            }
        }
        Ok(())
    });
    engine.register_fn("skip", |reason: &str| {
        with(|c| c.skip = Some(reason.to_owned()))
    });

    engine.register_fn("now", || with(|c| c.now_ms));
    engine.register_fn("parse_time", |ts: &str| -> R<i64> {
        crate::domain::parse_time_ms(ts).ok_or_else(|| {
            err(format!(
                "parse_time: {ts:?} is not an ISO 8601 / RFC 3339 time"
            ))
        })
    });
    engine.register_fn("format_time", |ms: i64| -> String {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
        humantime::format_rfc3339_seconds(t).to_string()
    });
    engine.register_fn("seconds", |n: i64| n.saturating_mul(1_000));
    engine.register_fn("minutes", |n: i64| n.saturating_mul(60_000));
    engine.register_fn("hours", |n: i64| n.saturating_mul(3_600_000));
    engine.register_fn("days", |n: i64| n.saturating_mul(86_400_000));
    engine.register_fn("duration_text", |ms: i64| -> String {
        let secs = (ms.max(0) / 1000) as u64;
        humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
    });
    engine.register_fn("json", |v: Dynamic| -> R<String> {
        let value: Value =
            rhai::serde::from_dynamic(&v).map_err(|e| err(format!("json(): {e}")))?;
        Ok(value.to_string())
    });
    engine.register_fn("once", |key: &str, window_ms: i64| {
        state_hit(key, window_ms).map(|n| n == 1)
    });
    engine.register_fn("count", state_hit);
}

/// Counts a hit on `key` in a fixed window that starts at its first hit.
fn state_hit(key: &str, window_ms: i64) -> R<i64> {
    if window_ms <= 0 {
        return Err(err("the window must be positive, e.g. hours(24)"));
    }
    with(|c| {
        let now = c.now_ms;
        c.undo.push((key.to_owned(), c.state.0.get(key).copied()));
        let e = c
            .state
            .0
            .entry(key.to_owned())
            .or_insert(StateEntry { until: 0, count: 0 });
        if e.until <= now {
            *e = StateEntry {
                until: now.saturating_add(window_ms),
                count: 0,
            };
        }
        e.count += 1;
        let n = e.count;
        let written = *e;
        c.state_writes.push((key.to_owned(), written));
        n
    })
}

/// Validates an action against its target and records it.
fn record(kind: ActionKind, target: &str, m: Map) -> R<()> {
    let (allowed, required): (&[&str], &[&str]) = match kind {
        ActionKind::Slack => (
            &["text", "blocks", "channel", "thread_key", "mentions"],
            &[],
        ),
        ActionKind::Ticket => (
            &[
                "key", "title", "body", "priority", "labels", "fields", "action",
            ],
            &["title"],
        ),
        ActionKind::Email => (&["to", "cc", "subject", "text", "html"], &["to", "subject"]),
        ActionKind::Http => (&["method", "path", "json", "headers"], &["path"]),
    };
    let fname = kind.as_str();
    for k in m.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(err(format!(
                "{fname}(): unknown field {k:?} (expected {})",
                allowed.join(", ")
            )));
        }
    }
    for r in required {
        if m.get(*r).is_none_or(|v| v.is_unit()) {
            return Err(err(format!("{fname}(): {r:?} is required")));
        }
    }
    if kind == ActionKind::Slack && !m.contains_key("text") && !m.contains_key("blocks") {
        return Err(err("slack(): give text or blocks"));
    }
    let payload: Value = rhai::serde::from_dynamic(&Dynamic::from_map(m.clone()))
        .map_err(|e| err(format!("{fname}(): {e}")))?;
    check_types(kind, &payload)?;
    with(|c| -> R<()> {
        let Some(&tkind) = c.targets.get(target) else {
            return Err(err(super::unknown_target(target, c.targets.keys())));
        };
        if !kind.accepts(tkind) {
            return Err(err(format!(
                "target {target:?} is a {} target; {fname}() needs {}",
                tkind.as_str(),
                kind.target_kinds()
            )));
        }
        c.actions.push(ActionIntent {
            rule: c.rule.clone(),
            target: target.to_owned(),
            action: kind,
            payload,
        });
        Ok(())
    })?
}

fn check_types(kind: ActionKind, p: &Value) -> R<()> {
    let fname = kind.as_str();
    let want = |field: &str, ok: fn(&Value) -> bool, what: &str| -> R<()> {
        match p.get(field) {
            Some(v) if !v.is_null() && !ok(v) => {
                Err(err(format!("{fname}(): {field:?} must be {what}")))
            }
            _ => Ok(()),
        }
    };
    fn string_list(v: &Value) -> bool {
        v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
    }
    fn addresses(v: &Value) -> bool {
        v.is_string() || string_list(v)
    }
    match kind {
        ActionKind::Slack => {
            want("text", Value::is_string, "a string")?;
            want("blocks", Value::is_array, "an array")?;
            want("channel", Value::is_string, "a string")?;
            want("thread_key", Value::is_string, "a string")?;
            want("mentions", Value::is_boolean, "true or false")
        }
        ActionKind::Ticket => {
            for f in ["key", "title", "body", "priority"] {
                want(f, Value::is_string, "a string")?;
            }
            want("labels", string_list, "an array of strings")?;
            want("fields", Value::is_object, "a map")?;
            want(
                "action",
                |v| matches!(v.as_str(), Some("trigger" | "acknowledge" | "resolve")),
                "one of \"trigger\", \"acknowledge\", \"resolve\"",
            )
        }
        ActionKind::Email => {
            want("to", addresses, "a string or an array of strings")?;
            want("cc", addresses, "a string or an array of strings")?;
            for f in ["subject", "text", "html"] {
                want(f, Value::is_string, "a string")?;
            }
            Ok(())
        }
        ActionKind::Http => {
            want(
                "method",
                |v| {
                    matches!(
                        v.as_str(),
                        Some("GET" | "POST" | "PUT" | "PATCH" | "DELETE")
                    )
                },
                "one of GET, POST, PUT, PATCH, DELETE",
            )?;
            want(
                "path",
                |v| v.as_str().is_some_and(|s| s.starts_with('/')),
                "a string starting with /",
            )?;
            want(
                "headers",
                |v| {
                    v.as_object()
                        .is_some_and(|o| o.values().all(Value::is_string))
                },
                "a map of strings",
            )
        }
    }
}

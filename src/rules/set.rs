//! Scanning `rules/`, compiling every file, and evaluating an event with
//! the compiled set. A set is immutable; reload builds a new one.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rhai::{AST, CallFnOptions, Dynamic, Engine, EvalAltResult, Position, Scope};
use sha2::{Digest as _, Sha256};

use super::api::{self, Ctx};
use super::engine::{self, TIME_BUDGET_TOKEN};
use super::{ActionKind, Evaluation, Outcome, RuleRun, StateMap};
use crate::config::{Config, TargetKind};

/// A problem with one rule file, located like a compiler error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

/// One compiled rule file.
pub struct RuleFile {
    /// Path relative to the rules directory, e.g. `session.closed.rhai`.
    pub name: String,
    /// The event type it binds to; `None` for `_any`.
    pub event_type: Option<String>,
    ast: AST,
}

/// A compiled, immutable set of rules.
pub struct RuleSet {
    pub version: Arc<str>,
    pub dir: PathBuf,
    engine: Arc<Engine>,
    by_type: HashMap<String, Vec<Arc<RuleFile>>>,
    any: Vec<Arc<RuleFile>>,
    targets: Arc<HashMap<String, TargetKind>>,
    budget: Duration,
}

const ANY: &str = "_any";

/// Names an editor or a tool leaves around that are never rules.
fn ignored(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".tmp")
        || name == "4913"
}

impl RuleSet {
    /// Compiles every rule under `config.rules.dir`; all errors at once.
    pub fn load(config: &Config) -> Result<RuleSet, Vec<LoadError>> {
        let engine = Arc::new(engine::build(&config.rules));
        let targets = Arc::new(
            config
                .targets
                .iter()
                .map(|(n, t)| (n.clone(), t.kind))
                .collect::<HashMap<_, _>>(),
        );
        Self::load_dir(
            &config.rules.dir,
            engine,
            targets,
            config.rules.time_budget.0,
        )
    }

    fn load_dir(
        dir: &Path,
        engine: Arc<Engine>,
        targets: Arc<HashMap<String, TargetKind>>,
        budget: Duration,
    ) -> Result<RuleSet, Vec<LoadError>> {
        let sources = scan(dir).map_err(|e| {
            vec![LoadError {
                file: dir.display().to_string(),
                line: 0,
                column: 0,
                message: format!("cannot read the rules directory: {e}"),
            }]
        })?;
        let mut errors = Vec::new();
        let version = fingerprint_of(&sources);
        let mut by_type: HashMap<String, Vec<Arc<RuleFile>>> = HashMap::new();
        let mut any = Vec::new();
        for (name, event_type, text) in sources {
            let ast = match engine.compile(&text) {
                Ok(ast) => ast,
                Err(e) => {
                    errors.push(LoadError {
                        file: name.clone(),
                        line: e.1.line().unwrap_or(0),
                        column: e.1.position().unwrap_or(0),
                        message: e.0.to_string(),
                    });
                    continue;
                }
            };
            let literal = check_literal_targets(&name, &text, &targets);
            if !literal.is_empty() {
                errors.extend(literal);
                continue;
            }
            if !ast
                .iter_functions()
                .any(|f| f.name == "on_event" && f.params.len() == 1)
            {
                errors.push(LoadError {
                    file: name.clone(),
                    line: 0,
                    column: 0,
                    message: "defines no `fn on_event(event)`; every rule file needs one".into(),
                });
                continue;
            }
            let rule = Arc::new(RuleFile {
                name,
                event_type: (event_type != ANY).then(|| event_type.clone()),
                ast,
            });
            match &rule.event_type {
                Some(t) => by_type.entry(t.clone()).or_default().push(rule),
                None => any.push(rule),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(RuleSet {
            version: version.into(),
            dir: dir.to_owned(),
            engine,
            by_type,
            any,
            targets,
            budget,
        })
    }

    /// Every rule file, in the order they would run for their type.
    pub fn files(&self) -> Vec<Arc<RuleFile>> {
        let mut types: Vec<&String> = self.by_type.keys().collect();
        types.sort();
        let mut out: Vec<Arc<RuleFile>> = types
            .into_iter()
            .flat_map(|t| self.by_type[t].clone())
            .collect();
        out.extend(self.any.iter().cloned());
        out
    }

    /// Whether some rule file binds to `event_type` exactly.
    pub fn handles(&self, event_type: &str) -> bool {
        self.by_type.contains_key(event_type)
    }

    /// Runs every matching rule on the event (exact JSON text) at `now_ms`
    /// (the time the event was received, so a replay decides the same way).
    /// Each rule fails alone: its actions and state writes are dropped, the
    /// others still count.
    pub fn evaluate(
        &self,
        event_json: &str,
        event_type: &str,
        now_ms: i64,
        state: StateMap,
    ) -> (Evaluation, StateMap) {
        let typed = self
            .by_type
            .get(event_type)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let rules: Vec<&Arc<RuleFile>> = typed.iter().chain(self.any.iter()).collect();
        let mut eval = Evaluation {
            version: self.version.clone(),
            outcome: if typed.is_empty() {
                Outcome::NoRule
            } else {
                Outcome::Routed
            },
            rules: Vec::new(),
            actions: Vec::new(),
            state_writes: Vec::new(),
        };
        if rules.is_empty() {
            // Nothing would read it: no need to parse the event.
            return (eval, state);
        }
        let event: Dynamic = match serde_json::from_str::<serde_json::Value>(event_json)
            .map_err(|e| e.to_string())
            .and_then(|v| rhai::serde::to_dynamic(v).map_err(|e| e.to_string()))
        {
            Ok(d) => d,
            Err(e) => {
                eval.outcome = Outcome::RuleError;
                eval.rules.push(RuleRun {
                    rule: "(event)".into(),
                    error: Some(format!("the event cannot be read as a map: {e}")),
                    skip: None,
                });
                return (eval, state);
            }
        };
        let mut state = state;
        for rule in rules {
            let ctx = Ctx {
                rule: rule.name.clone(),
                targets: self.targets.clone(),
                now_ms,
                actions: Vec::new(),
                skip: None,
                state,
                state_writes: Vec::new(),
                undo: Vec::new(),
            };
            let (result, mut ctx) = api::with_ctx(ctx, || {
                engine::with_budget(self.budget, || {
                    let opts = CallFnOptions::new().eval_ast(false).rewind_scope(true);
                    self.engine.call_fn_with_options::<Dynamic>(
                        opts,
                        &mut Scope::new(),
                        &rule.ast,
                        "on_event",
                        (event.clone(),),
                    )
                })
            });
            let mut run = RuleRun {
                rule: rule.name.clone(),
                error: None,
                skip: None,
            };
            match result {
                Ok(_) => {
                    run.skip = ctx.skip.take();
                    eval.actions.append(&mut ctx.actions);
                    eval.state_writes.append(&mut ctx.state_writes);
                }
                Err(e) => {
                    for (key, prev) in ctx.undo.drain(..).rev() {
                        match prev {
                            Some(p) => ctx.state.0.insert(key, p),
                            None => ctx.state.0.remove(&key),
                        };
                    }
                    let msg = describe(&rule.name, *e, self.budget);
                    tracing::warn!(rule = %rule.name, error = %msg, "rule failed");
                    run.error = Some(msg);
                    eval.outcome = Outcome::RuleError;
                }
            }
            eval.rules.push(run);
            state = ctx.state;
        }
        (eval, state)
    }
}

/// `file:line:col: message` for a runtime error, at the innermost position.
fn describe(file: &str, e: EvalAltResult, budget: Duration) -> String {
    let mut e = e;
    let mut pos = Position::NONE;
    loop {
        let p = e.position();
        if !p.is_none() {
            pos = p;
        }
        match e {
            EvalAltResult::ErrorInFunctionCall(_, _, inner, _) => e = *inner,
            _ => break,
        }
    }
    e.clear_position();
    let msg = match &e {
        EvalAltResult::ErrorTerminated(token, _) if token.to_string() == TIME_BUDGET_TOKEN => {
            format!("exceeded its time budget of {budget:?} (rules.time_budget)")
        }
        EvalAltResult::ErrorTooManyOperations(_) => {
            "exceeded its operation limit (rules.max_operations)".into()
        }
        EvalAltResult::ErrorStackOverflow(_) => {
            "exceeded the call depth limit (rules.max_call_levels)".into()
        }
        EvalAltResult::ErrorDataTooLarge(what, _) => format!(
            "{what} exceeds its size limit (rules.max_string_size / max_array_size / max_map_size)"
        ),
        EvalAltResult::ErrorRuntime(v, _) => v.to_string(),
        other => other.to_string(),
    };
    match (pos.line(), pos.position()) {
        (Some(l), Some(c)) => format!("{file}:{l}:{c}: {msg}"),
        (Some(l), None) => format!("{file}:{l}: {msg}"),
        _ => format!("{file}: {msg}"),
    }
}

/// Targets named by a string literal (`slack("support", ...)`) are checked
/// when the set loads, so `switchyard check` finds a typo before an event
/// does. Names computed at run time are checked when the call runs.
fn check_literal_targets(
    file: &str,
    text: &str,
    targets: &HashMap<String, TargetKind>,
) -> Vec<LoadError> {
    let mut errors = Vec::new();
    for (lineno, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for kind in [
            ActionKind::Slack,
            ActionKind::Ticket,
            ActionKind::Email,
            ActionKind::Http,
        ] {
            let fname = kind.as_str();
            let mut from = 0;
            while let Some(i) = code[from..].find(fname).map(|i| i + from) {
                from = i + fname.len();
                let before_ok = code[..i]
                    .chars()
                    .next_back()
                    .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
                let rest = code[from..].trim_start();
                let Some(args) = rest.strip_prefix('(') else {
                    continue;
                };
                let Some(lit) = args.trim_start().strip_prefix('"') else {
                    continue;
                };
                let Some(end) = lit.find('"') else { continue };
                if !before_ok {
                    continue;
                }
                let target = &lit[..end];
                let message = match targets.get(target) {
                    None => super::unknown_target(target, targets.keys()),
                    Some(&t) if !kind.accepts(t) => {
                        format!(
                            "target {target:?} is a {} target; {fname}() needs {}",
                            t.as_str(),
                            kind.target_kinds()
                        )
                    }
                    Some(_) => continue,
                };
                errors.push(LoadError {
                    file: file.to_owned(),
                    line: lineno + 1,
                    column: code[..i].chars().count() + 1,
                    message,
                });
            }
        }
    }
    errors
}

/// The version a load of `dir` would get now: a hash of names and contents.
pub fn fingerprint(dir: &Path) -> std::io::Result<String> {
    scan(dir).map(|s| fingerprint_of(&s))
}

fn fingerprint_of(sources: &[(String, String, String)]) -> String {
    let mut hasher = Sha256::new();
    for (name, _, text) in sources {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(text.as_bytes());
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())[..12].to_owned()
}

/// `(relative name, event type, text)` of every rule file, sorted.
fn scan(dir: &Path) -> std::io::Result<Vec<(String, String, String)>> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if ignored(&name) || name == "tests" {
            continue;
        }
        let path = entry.path();
        // metadata() follows symlinks: ConfigMap files are links into `..data`.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue; // a dangling link mid-swap; the next rescan sees the new target
        };
        if meta.is_file() {
            if let Some(ty) = name.strip_suffix(".rhai") {
                out.push((name.clone(), ty.to_owned(), std::fs::read_to_string(&path)?));
            }
        } else if meta.is_dir() {
            let mut inner: Vec<_> = std::fs::read_dir(&path)?.collect::<Result<_, _>>()?;
            inner.sort_by_key(|e| e.file_name());
            for f in inner {
                let fname = f.file_name().to_string_lossy().into_owned();
                if ignored(&fname) || !fname.ends_with(".rhai") {
                    continue;
                }
                if std::fs::metadata(f.path()).is_ok_and(|m| m.is_file()) {
                    out.push((
                        format!("{name}/{fname}"),
                        name.clone(),
                        std::fs::read_to_string(f.path())?,
                    ));
                }
            }
        }
    }
    Ok(out)
}

//! Rule tests: cases under `rules/tests/*.yaml`, each an event and the exact
//! list of actions the rules must plan for it. They run with
//! `switchyard test`, in `switchyard check`, in CI, and before a hot reload
//! is accepted.
//!
//! ```yaml
//! - name: a closed session posts a summary to support
//!   event_file: examples/events/session-closed.json   # from the project root; arrays give their first element
//!   now: 2026-11-30T14:30:00Z                          # what now() returns (default: the event's ts)
//!   expect:
//!     - { target: support, action: slack, payload: { text: "..." } }
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::{RuleSet, StateMap};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseSpec {
    name: String,
    #[serde(default)]
    event: Option<Value>,
    #[serde(default)]
    event_file: Option<PathBuf>,
    #[serde(default)]
    index: usize,
    #[serde(default)]
    now: Option<String>,
    #[serde(default)]
    outcome: Option<String>,
    expect: Vec<Value>,
}

/// One case's result.
#[derive(Debug)]
pub struct CaseResult {
    pub file: String,
    pub name: String,
    pub failure: Option<String>,
}

/// Everything `switchyard test` reports.
#[derive(Debug, Default)]
pub struct Report {
    pub cases: Vec<CaseResult>,
    /// Rule files no case exercised.
    pub uncovered: Vec<String>,
    /// Case files that could not be read.
    pub broken: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.failure.is_none()).count()
    }
    pub fn failed(&self) -> usize {
        self.cases.len() - self.passed()
    }
    pub fn ok(&self) -> bool {
        self.failed() == 0 && self.broken.is_empty()
    }
    /// One line per failure, for logs and reload errors.
    pub fn failures(&self) -> Vec<String> {
        let mut out: Vec<String> = self.broken.clone();
        out.extend(self.cases.iter().filter_map(|c| {
            c.failure
                .as_ref()
                .map(|f| format!("{}: {}: {}", c.file, c.name, f.lines().next().unwrap_or("")))
        }));
        out
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.broken {
            writeln!(f, "BROKEN {b}")?;
        }
        for c in &self.cases {
            match &c.failure {
                None => writeln!(f, "ok     {}: {}", c.file, c.name)?,
                Some(why) => {
                    writeln!(f, "FAIL   {}: {}", c.file, c.name)?;
                    for line in why.lines() {
                        writeln!(f, "         {line}")?;
                    }
                }
            }
        }
        for u in &self.uncovered {
            writeln!(f, "note   no case covers {u}")?;
        }
        writeln!(f, "{} passed, {} failed", self.passed(), self.failed())
    }
}

/// Runs every case in `<rules dir>/tests/`. Event files resolve from the
/// rules directory's parent (the project root).
pub fn run(set: &RuleSet) -> Report {
    let tests_dir = set.dir.join("tests");
    let root = set.dir.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut report = Report::default();
    let mut covered = BTreeSet::new();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&tests_dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    for path in files {
        let file = format!(
            "tests/{}",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        let specs: Vec<CaseSpec> = match std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_norway::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(s) => s,
            Err(e) => {
                report.broken.push(format!("{file}: {e}"));
                continue;
            }
        };
        for spec in specs {
            let failure = run_case(set, &root, &spec, &mut covered).err();
            report.cases.push(CaseResult {
                file: file.clone(),
                name: spec.name,
                failure,
            });
        }
    }
    report.uncovered = set
        .files()
        .iter()
        .map(|r| r.name.clone())
        .filter(|n| !covered.contains(n))
        .collect();
    report
}

fn run_case(
    set: &RuleSet,
    root: &Path,
    spec: &CaseSpec,
    covered: &mut BTreeSet<String>,
) -> Result<(), String> {
    let event = match (&spec.event, &spec.event_file) {
        (Some(e), None) => e.clone(),
        (None, Some(f)) => {
            let text = std::fs::read_to_string(root.join(f))
                .map_err(|e| format!("cannot read {}: {e}", f.display()))?;
            let v: Value =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", f.display()))?;
            match v {
                Value::Array(mut items) if spec.index < items.len() => {
                    items.swap_remove(spec.index)
                }
                Value::Array(_) => {
                    return Err(format!("{} has no element {}", f.display(), spec.index));
                }
                other => other,
            }
        }
        _ => return Err("give exactly one of event or event_file".into()),
    };
    let event_type = event
        .get("type")
        .and_then(Value::as_str)
        .ok_or("the event has no string `type`")?
        .to_owned();
    let now_text = spec
        .now
        .clone()
        .or_else(|| event.get("ts").and_then(Value::as_str).map(str::to_owned));
    let now_ms = match now_text {
        Some(t) => humantime::parse_rfc3339_weak(t.trim_end_matches('Z'))
            .map_err(|_| format!("now: {t:?} is not an RFC 3339 time"))?
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
        None => 0,
    };
    let (eval, _) = set.evaluate(&event.to_string(), &event_type, now_ms, StateMap::default());
    for r in &eval.rules {
        covered.insert(r.rule.clone());
    }
    let mut problems = Vec::new();
    for r in &eval.rules {
        if let Some(e) = &r.error {
            problems.push(format!("rule error: {e}"));
        }
    }
    if let Some(want) = &spec.outcome
        && want != eval.outcome.as_str()
    {
        problems.push(format!("outcome: expected {want}, got {}", eval.outcome));
    }
    let planned: Vec<Value> = eval
        .actions
        .iter()
        .zip(spec.expect.iter().map(Some).chain(std::iter::repeat(None)))
        .map(|(a, want)| {
            let mut v =
                serde_json::json!({"target": a.target, "action": a.action, "payload": a.payload});
            if want.and_then(|w| w.get("rule")).is_some() {
                v["rule"] = Value::from(a.rule.clone());
            }
            v
        })
        .collect();
    if planned != spec.expect {
        problems.push(format!(
            "planned actions differ\nexpected: {}\nplanned:  {}",
            serde_json::to_string_pretty(&spec.expect).unwrap_or_default(),
            serde_json::to_string_pretty(&planned).unwrap_or_default()
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

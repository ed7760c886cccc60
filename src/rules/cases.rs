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
//!
//! - name: a captured request from the sender, verified with the configured key
//!   request:
//!     source: screenmeet                     # its verifier and keys check the request
//!     body_file: tests/captured/closed.body   # the exact bytes (from the project root)
//!     headers: { x-signature: "9f86d0...", x-signature-algo: sha256 }
//!   expect: [...]
//! ```
//!
//! A `request` case goes through verification and splitting exactly as the
//! ingress would, so a captured request keeps testing the whole path.

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
    request: Option<RequestSpec>,
    #[serde(default)]
    index: usize,
    #[serde(default)]
    now: Option<String>,
    #[serde(default)]
    outcome: Option<String>,
    expect: Vec<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestSpec {
    source: String,
    body_file: PathBuf,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
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
/// rules directory's parent (the project root). Without `sources`, `request`
/// cases fail with a clear message.
pub fn run(set: &RuleSet) -> Report {
    run_with(set, None)
}

/// [`run`], with the configured sources so `request` cases can be verified.
pub fn run_with(set: &RuleSet, sources: Option<&Sources>) -> Report {
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
            let failure = run_case(set, &root, sources, &spec, &mut covered).err();
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

type Sources = std::collections::BTreeMap<String, crate::config::SourceConfig>;

/// Verifies and splits a captured request like the ingress does; returns
/// the `index`-th event.
fn event_from_request(
    root: &Path,
    sources: Option<&Sources>,
    req: &RequestSpec,
    index: usize,
    now_secs: i64,
) -> Result<Value, String> {
    use crate::ingress::{split, verify};
    let src = sources
        .ok_or("request cases need the config's sources (run them with switchyard test or check)")?
        .get(&req.source)
        .ok_or_else(|| format!("no source {:?} in the config", req.source))?;
    let body = std::fs::read(root.join(&req.body_file))
        .map_err(|e| format!("cannot read {}: {e}", req.body_file.display()))?;
    let mut headers = http::HeaderMap::new();
    for (k, v) in &req.headers {
        let name = http::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("bad header name {k:?}"))?;
        let value =
            http::HeaderValue::from_str(v).map_err(|_| format!("bad header value for {k}"))?;
        headers.append(name, value);
    }
    let body = bytes::Bytes::from(body);
    let verified = verify::Verifier::new(src)
        .verify(
            verify::Unverified {
                headers,
                body: body.clone(),
            },
            now_secs,
        )
        .map_err(|e| format!("the request does not verify: {} ({e})", e.code()))?;
    let events = split::split(src, &verified)
        .map_err(|e| format!("the request does not split: {} ({e})", e.code()))?;
    let ev = events
        .get(index)
        .ok_or_else(|| format!("the request has no event {index}"))?;
    if let crate::domain::EventVerdict::Rejected { reason } = &ev.verdict {
        return Err(format!(
            "event {index} of the request is rejected: {reason}"
        ));
    }
    serde_json::from_slice(&body[ev.range.clone()]).map_err(|e| e.to_string())
}

fn run_case(
    set: &RuleSet,
    root: &Path,
    sources: Option<&Sources>,
    spec: &CaseSpec,
    covered: &mut BTreeSet<String>,
) -> Result<(), String> {
    let explicit_now = spec.now.as_deref().map(parse_now).transpose()?;
    let event = match (&spec.event, &spec.event_file, &spec.request) {
        (Some(e), None, None) => e.clone(),
        (None, None, Some(r)) => {
            let now_secs = explicit_now.unwrap_or_else(crate::domain::now_millis) / 1000;
            event_from_request(root, sources, r, spec.index, now_secs)?
        }
        (None, Some(f), None) => {
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
        _ => return Err("give exactly one of event, event_file or request".into()),
    };
    let event_type = event
        .get("type")
        .and_then(Value::as_str)
        .ok_or("the event has no string `type`")?
        .to_owned();
    let now_ms = match (explicit_now, event.get("ts").and_then(Value::as_str)) {
        (Some(n), _) => n,
        (None, Some(ts)) => parse_now(ts)?,
        (None, None) => 0,
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

fn parse_now(t: &str) -> Result<i64, String> {
    humantime::parse_rfc3339_weak(t.trim_end_matches('Z'))
        .map_err(|_| format!("now: {t:?} is not an RFC 3339 time"))
        .map(|t| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64)
        })
}

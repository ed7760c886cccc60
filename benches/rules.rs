//! Rule evaluation cost per event (criterion): the shipped rules on the
//! shipped sample events, and the same with 1 000 unrelated rule files
//! present (must stay flat: rules are looked up by type).
//!
//! `cargo bench --bench rules`

use criterion::{Criterion, criterion_group, criterion_main};
use switchyard::config::Config;
use switchyard::rules::{RuleSet, StateMap};

fn config(rules_dir: &std::path::Path) -> Config {
    let text = std::fs::read_to_string("config.yaml").unwrap();
    let mut c = Config::from_str_with_env(&text, std::path::Path::new("."), &|k| {
        (k == "SCREENMEET_SIGNING_KEY").then(|| "bench".to_owned())
    })
    .unwrap();
    c.rules.dir = rules_dir.to_owned();
    c
}

fn first_event(file: &str) -> (String, String) {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let e = v[0].clone();
    (e["type"].as_str().unwrap().to_owned(), e.to_string())
}

fn bench(c: &mut Criterion) {
    let shipped = RuleSet::load(&config(std::path::Path::new("rules"))).unwrap();
    let crowded_dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir("rules").unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|x| x == "rhai") {
            std::fs::copy(&p, crowded_dir.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    for i in 0..1000 {
        std::fs::write(
            crowded_dir
                .path()
                .join(format!("unrelated.type{i:04}.rhai")),
            r#"fn on_event(e) { slack("support", `unrelated ${e.id}`); }"#,
        )
        .unwrap();
    }
    let crowded = RuleSet::load(&config(crowded_dir.path())).unwrap();

    let mut g = c.benchmark_group("evaluate");
    for file in [
        "examples/events/session-closed.json",
        "examples/events/session-scheduled.json",
    ] {
        let (ty, body) = first_event(file);
        g.bench_function(format!("{ty} / 3 rule files"), |b| {
            b.iter(|| shipped.evaluate(&body, &ty, 0, StateMap::default()))
        });
        g.bench_function(format!("{ty} / 1003 rule files"), |b| {
            b.iter(|| crowded.evaluate(&body, &ty, 0, StateMap::default()))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

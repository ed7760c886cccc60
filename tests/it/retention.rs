//! Retention over a journal a real instance wrote: what is finished and old
//! goes (in batches, by the loop at start), what is unfinished stays: dead
//! letters unless they have a retention, events with actions left, events
//! not evaluated yet or still inside their dedup window.

use std::path::Path;
use std::time::Duration;

use switchyard::config::Span;
use switchyard::store::Store;
use switchyard::store::retention::{Policy, Pruned};

use crate::delivery::{fake_slack, project_with_admin, wait_states};
use crate::support::{count, post_to, rows, wait_for, wait_until};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Moves everything in the journal 40 days into the past.
fn age_everything(db: &Path) {
    let c = rusqlite::Connection::open(db).unwrap();
    let d = 40 * DAY_MS;
    c.execute_batch(&format!(
        "UPDATE events SET received_at = received_at - {d}, dedup_until = dedup_until - {d};
         UPDATE actions SET created_at = created_at - {d}, finished_at = finished_at - {d};
         UPDATE quarantine SET received_at = received_at - {d};"
    ))
    .unwrap();
}

fn ids(db: &Path, table_sql: &str) -> Vec<String> {
    rows(db, table_sql)
}

#[tokio::test]
async fn old_finished_rows_are_pruned_in_batches_and_dead_letters_stay_until_given_a_retention() {
    let slack = fake_slack(vec![(404, "channel_not_found", None)]).await;
    let (d, mut config) = project_with_admin(&slack.url, "{ listen: null }");
    let db = d.path().join("journal.db");
    config.retention.batch = 2;
    let running = switchyard::app::start(config.clone()).await.unwrap();
    post_to(running.addr, "/h", r#"[{"type":"t","label":"dies"}]"#).await;
    wait_states(&db, &["dead"]).await;
    post_to(running.addr, "/h", r#"[{"type":"t","label":"delivered"}]"#).await;
    wait_states(&db, &["dead", "delivered"]).await;
    // One event no rule handles and one rejected element; a quarantined body.
    post_to(running.addr, "/h", r#"[{"type":"u"},{"no":"type"}]"#).await;
    crate::support::post_expecting(running.addr, "/h", "{}", 400).await;
    wait_until("3 evaluations", || {
        count(&db, "SELECT count(*) FROM evaluations") == 3
    })
    .await;
    running.stop().await;
    assert_eq!(count(&db, "SELECT count(*) FROM action_attempts"), 2);

    // 40 days later: the first prune runs at start, two rows per batch.
    age_everything(&db);
    let running = switchyard::app::start(config.clone()).await.unwrap();
    post_to(running.addr, "/h", r#"[{"type":"t","label":"fresh"}]"#).await;
    wait_for(|| {
        let left = ids(&db, "SELECT cast(id AS TEXT) FROM events ORDER BY id");
        if left == ["1", "5"] {
            Ok(())
        } else {
            Err(format!("events left: {left:?}"))
        }
    })
    .await;
    wait_states(&db, &["dead", "delivered"]).await;
    // The delivered action went with its attempts; the dead letter and its
    // event stayed; so did everything fresh.
    assert_eq!(
        ids(
            &db,
            "SELECT json_extract(payload, '$.text') FROM actions ORDER BY created_at"
        ),
        ["dies", "fresh"]
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM action_attempts a JOIN actions b ON b.id = a.action_id WHERE json_extract(b.payload, '$.text') = 'delivered'"
        ),
        0
    );
    assert_eq!(count(&db, "SELECT count(*) FROM action_attempts"), 2);
    assert_eq!(count(&db, "SELECT count(*) FROM quarantine"), 0);
    assert_eq!(
        ids(
            &db,
            "SELECT cast(event_id AS TEXT) FROM evaluations ORDER BY event_id"
        ),
        ["1", "5"]
    );
    let m = running.metrics.render();
    for line in [
        "switchyard_retention_pruned_total{kind=\"events\"} 3\n",
        "switchyard_retention_pruned_total{kind=\"actions\"} 1\n",
        "switchyard_retention_pruned_total{kind=\"quarantine\"} 1\n",
    ] {
        assert!(m.contains(line), "{line} not in\n{m}");
    }
    running.stop().await;

    // Give dead letters a retention: the old one goes, with its event.
    config.retention.dead_letters = Some(Span(Duration::from_secs(30 * 24 * 3600)));
    let running = switchyard::app::start(config).await.unwrap();
    wait_for(|| {
        let left = ids(&db, "SELECT cast(id AS TEXT) FROM events ORDER BY id");
        if left == ["5"] {
            Ok(())
        } else {
            Err(format!("events left: {left:?}"))
        }
    })
    .await;
    assert_eq!(
        count(&db, "SELECT count(*) FROM actions WHERE state = 'dead'"),
        0
    );
    assert_eq!(count(&db, "SELECT count(*) FROM action_attempts"), 1);
    running.stop().await;
}

#[tokio::test]
async fn unfinished_events_survive_any_retention() {
    // No webhook URL: every action is held.
    let (d, config) = project_with_admin("", "{ listen: null }");
    let db = d.path().join("journal.db");
    let running = switchyard::app::start(config.clone()).await.unwrap();
    post_to(
        running.addr,
        "/h",
        r#"[{"type":"t","label":"held"},{"type":"u","n":2},{"type":"u","n":3}]"#,
    )
    .await;
    wait_until("3 evaluations", || {
        count(&db, "SELECT count(*) FROM evaluations") == 3
    })
    .await;
    wait_states(&db, &["held"]).await;
    running.stop().await;
    age_everything(&db);
    let c = rusqlite::Connection::open(&db).unwrap();
    // Event 2 is still inside its dedup window; event 3 is beyond the
    // evaluation cursor, as if the evaluation loop had not reached it.
    c.execute(
        "UPDATE events SET dedup_until = ?1 WHERE id = 2",
        [i64::MAX],
    )
    .unwrap();
    c.execute("UPDATE meta SET value = 2 WHERE key = 'eval_cursor'", [])
        .unwrap();
    drop(c);

    let store = Store::open(&config.store, &config.store_options()).unwrap();
    let mut retention = config.retention.clone();
    retention.dead_letters = Some(Span(Duration::from_secs(3600)));
    let prune = || store.prune(Policy::at(&retention, switchyard::domain::now_millis()));
    assert_eq!(prune().await.unwrap(), Pruned::default());
    assert_eq!(count(&db, "SELECT count(*) FROM events"), 3);

    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute("UPDATE events SET dedup_until = 0 WHERE id = 2", [])
        .unwrap();
    assert_eq!(prune().await.unwrap().events, 1);
    c.execute("UPDATE meta SET value = 3 WHERE key = 'eval_cursor'", [])
        .unwrap();
    assert_eq!(prune().await.unwrap().events, 1);
    // The held action's event stays, and so does its action.
    assert_eq!(ids(&db, "SELECT cast(id AS TEXT) FROM events"), ["1"]);
    assert_eq!(ids(&db, "SELECT state FROM actions"), ["held"]);
    assert_eq!(prune().await.unwrap(), Pruned::default());
    store.close().await;
}

//! The ingest log behind every 200: segments roll and are reused, a
//! restart replays only what the database index is missing, and the dedup
//! index survives it.

use std::path::Path;

use switchyard::store::Store;

use crate::support::{self, batch};

fn segments(db: &Path) -> usize {
    let mut dir = db.as_os_str().to_owned();
    dir.push("-log");
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        })
        .count()
}

#[tokio::test]
async fn segments_roll_are_reused_and_a_restart_replays_nothing_twice() {
    let env = support::env_with_cap(12 << 20);
    let h = support::harness_with(env);
    let db = h.env.db();
    // Batches of ~10 MiB: each needs a fresh 16 MiB segment.
    let bodies: Vec<Vec<u8>> = (0..9)
        .map(|i| batch(10, &format!("big{i}-"), 1 << 20))
        .collect();
    for body in &bodies[..8] {
        let a = h.post_signed(body).await;
        assert_eq!(a.status, 200, "{:?}", a.json);
        assert_eq!(a.json["accepted"], 10);
    }
    assert_eq!(h.events().await, 80);
    // The next roll sees every segment indexed: they are renamed for
    // reuse or deleted, never piled up.
    assert_eq!(h.post_signed(&bodies[8]).await.json["accepted"], 10);
    assert!(segments(&db) <= 3, "{} segments left", segments(&db));
    let ids = h
        .query_strings("SELECT CAST(id AS TEXT) FROM events ORDER BY id")
        .await;
    assert_eq!(ids.len(), 90);
    assert_eq!(ids.first().map(String::as_str), Some("1"));
    assert_eq!(ids.last().map(String::as_str), Some("90"));

    let support::Harness { env, store, .. } = h;
    store.close().await;
    let h = support::harness_with(env);
    assert_eq!(h.events().await, 90, "a clean restart replays nothing");
    let again = h.post_signed(&bodies[7]).await;
    assert_eq!(again.json["duplicates"], 10, "{:?}", again.json);
    let more = h.post_signed(&batch(1, "after", 10)).await;
    assert_eq!(more.json["accepted"], 1);
    assert_eq!(
        h.query_strings("SELECT CAST(max(id) AS TEXT) FROM events")
            .await,
        vec!["91"]
    );
}

#[tokio::test]
async fn a_log_record_the_index_never_saw_is_replayed_at_open() {
    let env = support::env();
    let db = env.db();
    let h = support::harness_with(env);
    let a = h.post_signed(&batch(3, "kept", 100)).await;
    assert_eq!(a.json["accepted"], 3);
    let support::Harness { env, store, .. } = h;
    store.close().await;
    support::forget_index(&db);
    assert_eq!(support::count(&db, "SELECT count(*) FROM events"), 0);
    let store = Store::open(&env.config.store, &env.config.store_options()).unwrap();
    assert_eq!(support::count(&db, "SELECT count(*) FROM events"), 3);
    assert_eq!(
        support::rows(
            &db,
            "SELECT json_extract(body, '$.id') FROM events ORDER BY id"
        ),
        vec!["kept000000", "kept000001", "kept000002"]
    );
    store.close().await;
}

/// The log writer is a thread, and its close is awaited as a message: a
/// runtime dropped while a store is still open elsewhere (here: a clone
/// held by a plain thread, as the evaluation loop holds one) must not wait
/// for that thread. Waiting on a blocking join of it would hang the drop.
#[test]
fn dropping_the_runtime_while_the_store_is_open_does_not_wait_for_the_log() {
    let env = support::env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let store = runtime
        .block_on(async { Store::open(&env.config.store, &env.config.store_options()) })
        .unwrap();
    let (release, held) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let _store = store;
        let _ = held.recv();
    });
    let (dropped, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(runtime);
        let _ = dropped.send(());
    });
    let finished = done.recv_timeout(std::time::Duration::from_secs(20));
    let _ = release.send(());
    holder.join().unwrap();
    assert!(
        finished.is_ok(),
        "dropping the runtime waited for the open log"
    );
}

/// The nice value (field 19 of `/proc/<pid>/task/<tid>/stat`) of each of
/// this process's threads whose name starts with `name`.
fn nice_of_threads(name: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let dir = task.unwrap().path();
        let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else {
            continue; // the thread ended meanwhile
        };
        if !comm.trim_end().starts_with(name) {
            continue;
        }
        out.extend(nice_of_task(&dir));
    }
    out
}

/// Field 19 of a task's `stat`: its nice value (none if it ended).
fn nice_of_task(dir: &Path) -> Option<i32> {
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    // After the parenthesised name: the state is field 3.
    let after = &stat[stat.rfind(')')? + 2..];
    after.split(' ').nth(16)?.parse().ok()
}

/// Whether this process may raise a thread's priority back to `base`
/// (what lowering the journal's threads waits for): `CAP_SYS_NICE`, or an
/// `RLIMIT_NICE` that reaches `base`.
fn can_return_to(base: i32) -> bool {
    let caps = rustix::thread::capabilities(None).unwrap();
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nice).current;
    caps.effective
        .contains(rustix::thread::CapabilitySet::SYS_NICE)
        || limit.is_none_or(|l| 20 - l as i64 <= i64::from(base))
}

const BACKGROUND: [&str; 3] = ["switchyard-jour", "switchyard-fsyn", "switchyard-chec"];

#[tokio::test]
async fn indexing_threads_yield_while_they_keep_up_and_return_when_evaluation_falls_behind() {
    let mut env = support::env();
    // Whatever nice the tests run at, the store's threads start from it.
    let main_thread = Path::new("/proc/self/task").join(std::process::id().to_string());
    let base = nice_of_task(&main_thread).unwrap();
    let lowered = if can_return_to(base) {
        (base + 3).min(19)
    } else {
        base // never lowered without a way back
    };
    // A step no other store in this process uses: the threads found with
    // its value are this store's (unless both end at the cap of 19).
    env.config.server.indexing_nice = 3;
    // No evaluation loop runs here: every accepted event stays unevaluated.
    let h = support::harness_with(env);
    // An answered post: the log thread has run (and named itself).
    assert_eq!(
        h.post_signed(&batch(1, "nice", 100)).await.json["accepted"],
        1
    );
    // Thread names are cut to 15 bytes by the kernel.
    for name in BACKGROUND {
        let found = nice_of_threads(name);
        assert!(found.contains(&lowered), "{name}: {found:?}, base {base}");
    }
    let log = nice_of_threads("switchyard-log");
    assert!(
        !log.is_empty() && log.iter().all(|&n| n == base),
        "{log:?}, base {base}"
    );
    assert_eq!(h.store.indexing_lowered(), lowered != base);
    // 20 000 unevaluated events: past the point where routing is late.
    for i in 0..4 {
        let a = h.post_signed(&batch(5000, &format!("late{i}-"), 60)).await;
        assert_eq!(a.json["accepted"], 5000, "{:?}", a.json);
    }
    // The log decides after each group; one more answer means it has
    // decided on the groups before.
    assert_eq!(
        h.post_signed(&batch(1, "after", 100)).await.json["accepted"],
        1
    );
    for name in BACKGROUND {
        let found = nice_of_threads(name);
        assert!(
            !found.contains(&lowered) || lowered == base,
            "{name}: {found:?}, base {base}"
        );
        assert!(found.contains(&base), "{name}: {found:?}, base {base}");
    }
    assert!(!h.store.indexing_lowered());
    h.store.close().await;
}

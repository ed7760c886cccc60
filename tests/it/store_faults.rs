//! The journal on a real filesystem that fills up: the ingress answers 503
//! (never 200), writes no half batch, and recovers without a restart when
//! space comes back. And on one that is read-only when the router starts:
//! the start fails and says why. Needs root to mount a small tmpfs (CI runs
//! as root).
//!
//! A filesystem that turns read-only under the running router cannot be
//! staged here: the kernel refuses to remount a tmpfs or a bind mount
//! read-only while the journal's files are open for writing, this kernel
//! has no device-mapper to fail a disk, and `blockdev --setro` under a
//! mounted ext4 only warns. The full disk is the failing store these tests
//! run against.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{self, KEY, PATH, batch, sign_hex};

/// A tmpfs mounted for one test; unmounted on drop.
struct SmallDisk {
    mnt: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let mnt = dir.path().join("disk");
        std::fs::create_dir(&mnt).unwrap();
        run_mount(
            &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"],
            &mnt,
            "this test mounts a tmpfs and must run as root",
        );
        SmallDisk { mnt, _dir: dir }
    }

    /// Writes a filler file until the filesystem is full.
    fn fill(&self) -> PathBuf {
        let p = self.mnt.join("filler");
        let mut f = std::fs::File::create(&p).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        while f.write_all(&[0]).is_ok() {}
        let _ = f.sync_all();
        p
    }

    /// Remounts the filesystem read-only or read-write. The kernel refuses
    /// a read-only remount while any file on it is open for writing.
    fn remount(&self, mode: &str) {
        run_mount(
            &["-o", &format!("remount,{mode}")],
            &self.mnt,
            &format!("remount {mode}"),
        );
    }
}

/// Runs `mount ARGS MNT`, failing the test with `what` and mount's stderr.
fn run_mount(args: &[&str], mnt: &Path, what: &str) {
    let out = Command::new("mount")
        .args(args)
        .arg(mnt)
        .output()
        .expect("running mount");
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
    }
}

fn db_events(db: &Path) -> i64 {
    support::count(db, "SELECT count(*) FROM events")
}

/// A 40 MB tmpfs (room for the log's preallocated segment and a small
/// database), a test environment whose journal is on it, and its path.
fn journal_on_small_disk() -> (SmallDisk, support::Env, PathBuf) {
    let disk = SmallDisk::mount("40m");
    let mut env = support::env();
    let db = disk.mnt.join("journal.db");
    env.config.store = switchyard::config::StoreUrl::Sqlite(db.clone());
    (disk, env, db)
}

#[tokio::test]
async fn full_disk_is_503_with_no_half_batch_and_recovers_without_restart() {
    let (disk, env, db) = journal_on_small_disk();
    let running = switchyard::app::start(env.config.clone()).await.unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://{}{PATH}", running.addr);
    let send = |body: Vec<u8>| {
        client
            .post(&url)
            .header("x-signature", sign_hex(KEY, &body))
            .body(body)
            .send()
    };
    assert_eq!(send(batch(2, "before", 10)).await.unwrap().status(), 200);
    support::settle(&running.store).await;
    assert_eq!(db_events(&db), 2);

    let filler = disk.fill();
    // The log's segment was allocated before the disk filled, so a batch
    // may still be made durable there and answered 200; indexing it into
    // the database (~400 KB of new pages) fails, and from then on every
    // batch is refused until the index can be written again.
    let mut acknowledged = 0;
    let mut refused = None;
    for i in 0..20 {
        let body = batch(400, &format!("during-{i}"), 900);
        let resp = send(body.clone()).await.unwrap();
        match resp.status().as_u16() {
            200 => acknowledged += 1,
            503 => {
                assert_eq!(resp.headers()["retry-after"], "5");
                let json: serde_json::Value = resp.json().await.unwrap();
                assert_eq!(json["error"], "store_unavailable");
                refused = Some(body);
                break;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    let refused = refused.expect("a full disk must lead to 503");
    let ready = reqwest::get(format!("http://{}/readyz", running.admin_addr.unwrap()))
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(
        db_events(&db),
        2,
        "nothing written to the full disk's database"
    );

    std::fs::remove_file(filler).unwrap();
    // The index retries the acknowledged events on its own.
    support::wait_until("the store to recover", || running.store.healthy()).await;
    let ready = reqwest::get(format!("http://{}/readyz", running.admin_addr.unwrap()))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let resp = send(refused).await.unwrap();
    assert_eq!(resp.status(), 200, "recovers once space is back");
    let json: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        json,
        serde_json::json!({"accepted":400,"duplicates":0,"rejected":0}),
        "no part of the refused batch was kept"
    );
    running.stop().await;
    assert_eq!(
        db_events(&db),
        2 + 400 * (acknowledged + 1),
        "every acknowledged event is in the journal"
    );
}

#[tokio::test]
async fn read_only_filesystem_stops_the_start_with_the_reason_and_loses_nothing() {
    let (disk, env, db) = journal_on_small_disk();
    let running = switchyard::app::start(env.config.clone()).await.unwrap();
    let url = format!("http://{}{PATH}", running.addr);
    let body = batch(3, "kept", 10);
    let resp = reqwest::Client::new()
        .post(&url)
        .header("x-signature", sign_hex(KEY, &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    running.stop().await;

    disk.remount("ro");
    let err = match switchyard::app::start(env.config.clone()).await {
        Ok(_) => panic!("a read-only data directory must stop the start"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains(&format!("cannot open the store at {}", db.display()))
            && err.contains("(the filesystem holding it is mounted read-only)"),
        "{err}"
    );

    disk.remount("rw");
    assert_eq!(db_events(&db), 3, "the events from before are all there");
    let running = switchyard::app::start(env.config.clone()).await.unwrap();
    running.stop().await;
    assert_eq!(db_events(&db), 3);
}

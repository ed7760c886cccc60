//! One running router per store. The ingest log has a single writer by
//! design, and two routers on one journal would hand out the same event ids
//! and evaluate the same events twice. So opening the store for writing
//! first takes an exclusive lock on `<db>.lock` (an advisory `flock`, which
//! the kernel drops when the process dies, however it dies), before
//! anything is read or written. The SQLite writer, the last of the store's
//! threads to end, holds it until it ends. A second router on the same
//! store is refused with the holder's pid. Operator tools that only read,
//! and their own SQLite writes (`replay`), do not take it.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::Path;

use super::StoreError;

/// Held while the store is open for writing; dropping it releases the lock.
pub(super) struct StoreLock {
    _file: File,
}

/// Takes the store's lock, or says which process holds it.
pub(super) fn acquire(db: &Path) -> Result<StoreLock, StoreError> {
    let err = |reason: String| super::sqlite::open_error(db, reason);
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    }
    let path = super::beside(db, ".lock");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| err(format!("{}: {e}", path.display())))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {
            // Who holds it, for the message a second router prints.
            let pid = format!("{}\n", std::process::id());
            file.set_len(0)
                .and_then(|()| file.write_all(pid.as_bytes()))
                .map_err(|e| err(format!("{}: {e}", path.display())))?;
            Ok(StoreLock { _file: file })
        }
        Err(rustix::io::Errno::WOULDBLOCK) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => String::new(),
                pid => format!(" (pid {pid})"),
            };
            Err(StoreError::Open {
                path: db.to_owned(),
                reason: format!(
                    "another switchyard is running on this store{holder}; stop it first, or give this one a store of its own"
                ),
            })
        }
        Err(e) => Err(err(format!("locking {}: {e}", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("data/journal.db");
        let first = acquire(&db).unwrap();
        let refused = acquire(&db).err().expect("the store is taken").to_string();
        assert_eq!(
            refused,
            format!(
                "cannot open the store at {}: another switchyard is running on this store (pid {}); stop it first, or give this one a store of its own",
                db.display(),
                std::process::id()
            )
        );
        drop(first);
        assert!(acquire(&db).is_ok(), "free again once the holder is gone");
    }
}

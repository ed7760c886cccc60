//! How the ingest log's bytes reach the disk: one open segment file and
//! its durable writes.
//!
//! A segment is opened for direct, synchronous writes (`O_DIRECT |
//! O_DSYNC`) where the filesystem allows it: a group's records go from one
//! block-aligned buffer to the device and the write returns after the
//! device has flushed them. That skips the page cache and its writeback,
//! and on the development machine a durable 16 KiB write takes ~95 µs and
//! ~35 µs of CPU, against ~140 µs and ~55 µs for a buffered write plus
//! `fdatasync` (BENCHMARKS.md). Direct writes must start and end on block
//! boundaries, so the bytes of the last partial block are kept in memory
//! and written again, in front of the next group. Where direct I/O is
//! refused (some filesystems), the segment falls back to buffered writes
//! and `fdatasync`, with the same contract.

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::path::Path;

/// Alignment of direct writes: offset, length and buffer address. 4 KiB
/// satisfies devices with 512-byte and with 4 KiB logical blocks.
const BLOCK: u64 = 4096;

/// A reusable buffer whose data starts on a [`BLOCK`] boundary in memory.
#[derive(Default)]
struct AlignedBuf {
    raw: Vec<u8>,
}

impl AlignedBuf {
    /// A zeroed, block-aligned slice of `len` bytes (a multiple of BLOCK).
    fn zeroed(&mut self, len: usize) -> &mut [u8] {
        let block = BLOCK as usize;
        if self.raw.len() < len + block {
            self.raw = vec![0; (len + block).next_power_of_two()];
        }
        let start = (block - self.raw.as_ptr() as usize % block) % block;
        let out = &mut self.raw[start..start + len];
        out.fill(0);
        out
    }
}

/// The segment being written.
pub(super) struct Segment {
    file: File,
    pub number: u64,
    /// Where the next record goes; everything before it is durable.
    pub offset: u64,
    pub size: u64,
    /// After a failed write: bytes up to here may hold records nobody was
    /// told about, and are overwritten (with the next group or zeros)
    /// before anything after them is made durable.
    dirty_to: u64,
    /// Direct writes: the bytes of the block holding `offset`, from its
    /// start up to `offset`, rewritten in front of the next group.
    direct: Option<Tail>,
}

#[derive(Default)]
struct Tail {
    bytes: Vec<u8>,
    buf: AlignedBuf,
}

/// Whether to try direct I/O; tests also run the buffered path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WriteMode {
    DirectIfPossible,
    Buffered,
}

/// The file opened for direct, synchronous writes, checked with a first
/// write of one zero block; `None` if the filesystem refuses (`EINVAL`).
fn open_direct(path: &Path) -> std::io::Result<Option<(File, Tail)>> {
    let refused = |e: std::io::Error| match e.kind() {
        ErrorKind::InvalidInput => Ok(None),
        _ => Err(e),
    };
    let file = match std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT | libc::O_DSYNC)
        .open(path)
    {
        Ok(file) => file,
        Err(e) => return refused(e),
    };
    let mut tail = Tail::default();
    match file.write_all_at(tail.buf.zeroed(BLOCK as usize), 0) {
        Ok(()) => Ok(Some((file, tail))),
        Err(e) => refused(e),
    }
}

impl Segment {
    /// Opens the zero-filled segment file at `path` for writing from its
    /// start: direct and synchronous if `mode` allows and the filesystem
    /// accepts it, else buffered.
    pub fn open(path: &Path, number: u64, mode: WriteMode) -> std::io::Result<Segment> {
        let direct = match mode {
            WriteMode::DirectIfPossible => open_direct(path)?,
            WriteMode::Buffered => None,
        };
        let (file, direct) = match direct {
            Some((file, tail)) => (file, Some(tail)),
            None => (std::fs::OpenOptions::new().write(true).open(path)?, None),
        };
        Ok(Segment {
            size: file.metadata()?.len(),
            file,
            number,
            offset: 0,
            dirty_to: 0,
            direct,
        })
    }

    pub fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// Writes `records` at `offset` and makes them durable, overwriting any
    /// bytes a failed write may have left beyond them. On success `offset`
    /// moves past them; on error nothing may be acknowledged, and the bytes
    /// that may have reached the file are remembered as dirty.
    pub fn append(&mut self, records: &[u8]) -> std::io::Result<()> {
        let end = self.offset + records.len() as u64;
        let cover = end.max(self.dirty_to);
        let written = match &mut self.direct {
            Some(tail) => {
                let start = self.offset - tail.bytes.len() as u64;
                let len = (cover - start).div_ceil(BLOCK) * BLOCK;
                let buf = tail.buf.zeroed(len as usize);
                let lead = tail.bytes.len();
                buf[..lead].copy_from_slice(&tail.bytes);
                buf[lead..lead + records.len()].copy_from_slice(records);
                let result = self.file.write_all_at(buf, start);
                if result.is_ok() {
                    let keep = (end - end % BLOCK - start) as usize;
                    tail.bytes.clear();
                    tail.bytes
                        .extend_from_slice(&buf[keep..(end - start) as usize]);
                }
                result.map_err(|e| (e, start + len))
            }
            None => {
                // Stray bytes of a failed write beyond these records are zeroed.
                let stray = vec![0u8; (cover - end) as usize];
                self.file
                    .write_all_at(records, self.offset)
                    .and_then(|()| self.file.write_all_at(&stray, end))
                    .and_then(|()| self.file.sync_data())
                    .map_err(|e| (e, cover))
            }
        };
        match written {
            Ok(()) => {
                self.offset = end;
                self.dirty_to = 0;
                Ok(())
            }
            Err((e, reached)) => {
                self.dirty_to = self.dirty_to.max(reached);
                Err(e)
            }
        }
    }

    /// Whether a failed write may have left records after `offset`.
    pub fn is_dirty(&self) -> bool {
        self.dirty_to > self.offset
    }

    /// Zeroes what a failed write may have left, durably, so a replay can
    /// never read records nobody was told about.
    pub fn clean(&mut self) -> std::io::Result<()> {
        if self.is_dirty() {
            self.append(&[])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A segment over a fresh 1 MiB zero-filled file, and the file's path.
    fn fresh(mode: WriteMode) -> (tempfile::TempDir, std::path::PathBuf, Segment) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.seg");
        std::fs::write(&path, vec![0u8; 1 << 20]).unwrap();
        let seg = Segment::open(&path, 1, mode).unwrap();
        (dir, path, seg)
    }

    /// Odd-sized appends land byte-exact, in both write modes, and the
    /// block tail carried between direct writes is never lost.
    #[test]
    fn appends_of_any_size_land_exactly_in_both_modes() {
        for mode in [WriteMode::DirectIfPossible, WriteMode::Buffered] {
            let (_dir, path, mut seg) = fresh(mode);
            if mode == WriteMode::Buffered {
                assert!(!seg.is_direct());
            }
            let mut expect = Vec::new();
            for (i, n) in [1usize, 4095, 4096, 4097, 10_000, 3, 12_288, 77]
                .into_iter()
                .enumerate()
            {
                let chunk: Vec<u8> = (0..n).map(|j| (i * 31 + j) as u8 | 1).collect();
                seg.append(&chunk).unwrap();
                expect.extend_from_slice(&chunk);
                assert_eq!(seg.offset, expect.len() as u64);
            }
            let data = std::fs::read(&path).unwrap();
            assert_eq!(&data[..expect.len()], &expect[..], "{mode:?}");
            assert!(data[expect.len()..].iter().all(|&b| b == 0), "{mode:?}");
        }
    }

    #[test]
    fn cleaning_zeroes_what_a_failed_write_left() {
        for mode in [WriteMode::DirectIfPossible, WriteMode::Buffered] {
            let (_dir, path, mut seg) = fresh(mode);
            // Stray bytes are written past the log's back, unaligned.
            let side = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            seg.append(b"acknowledged").unwrap();
            // As if a write of 9 000 bytes had reached the file and failed to sync.
            let stray = vec![0xAB; 9_000];
            side.write_all_at(&stray, seg.offset).unwrap();
            seg.dirty_to = seg.offset + stray.len() as u64;
            assert!(seg.is_dirty());
            seg.clean().unwrap();
            assert!(!seg.is_dirty());
            let data = std::fs::read(&path).unwrap();
            assert_eq!(&data[..12], b"acknowledged");
            assert!(data[12..].iter().all(|&b| b == 0), "{mode:?}");
            // A shorter next group still overwrites every stray byte.
            side.write_all_at(&stray, seg.offset).unwrap();
            seg.dirty_to = seg.offset + stray.len() as u64;
            seg.append(b"next").unwrap();
            let data = std::fs::read(&path).unwrap();
            assert_eq!(&data[..12], b"acknowledged");
            assert_eq!(&data[12..16], b"next");
            assert!(data[16..].iter().all(|&b| b == 0), "{mode:?}");
        }
    }
}

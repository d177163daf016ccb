//! What a caller can choose and read: mount options, tear modes, injected faults, counters and
//! the report of a cut. Plain data; no I/O happens here.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

/// How [`MountedFs`](crate::MountedFs) is mounted and how slow and small its "card" is.
#[derive(Clone, Debug)]
pub struct MountOptions {
    /// Added to every fsync, fdatasync and fsyncdir before it returns (an SD card: ~5 ms).
    pub fsync_latency: Duration,
    /// Bytes per second charged at fsync time for the bytes made durable; `None`: unlimited.
    pub write_bandwidth: Option<u64>,
    /// Writes fail with `ENOSPC` once durable plus un-synced bytes would exceed this.
    pub capacity: Option<u64>,
    /// Tear used by the control command `cut --tear` when it names no block count.
    pub tear: Tear,
    /// Seed of the random choices (random tears); `None`: a fresh seed per mount.
    pub seed: Option<u64>,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            fsync_latency: Duration::ZERO,
            write_bandwidth: None,
            capacity: None,
            tear: Tear::Random,
            seed: None,
        }
    }
}

/// What happens to the last un-synced write of each file when the power is cut.
///
/// The write is split at file offsets that are multiples of 4096 bytes; its first `k` pieces
/// (whole 4 KiB blocks when the write is aligned) reach the durable image, everything else
/// that was not synced is dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum Tear {
    /// Drop the last write like every other un-synced write.
    #[default]
    None,
    /// Keep the first `k` blocks of the last write (all of it if it has fewer).
    Blocks(u64),
    /// Keep the first `k` blocks, `k` drawn uniformly from `0..=n` for a write of `n` pieces
    /// (the cut may fall before, inside or after the write).
    Random,
}

/// A fault injected on command; see [`MountedFs::inject`](crate::MountedFs::inject).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The next `count` fsync/fdatasync calls, on any file, fail with `EIO`.
    FsyncEio {
        /// How many calls fail.
        count: u32,
    },
    /// The next `count` fsyncdir calls fail with `EIO`.
    FsyncDirEio {
        /// How many calls fail.
        count: u32,
    },
    /// Every write to a file one of whose paths contains `path_contains` fails with `EIO`.
    WriteEio {
        /// Substring of the path inside the mount, e.g. `"photos/"` or `".db-wal"`.
        path_contains: String,
    },
    /// Every fsync/fdatasync of a file one of whose paths contains `path_contains` fails with
    /// `EIO`.
    FsyncEioOn {
        /// Substring of the path inside the mount.
        path_contains: String,
    },
    /// Writes fail with `ENOSPC` once durable plus un-synced bytes would exceed `bytes`
    /// (replaces [`MountOptions::capacity`] until [`clear_faults`](crate::MountedFs::clear_faults)).
    Capacity {
        /// The card's size in bytes.
        bytes: u64,
    },
}

/// Operation counts since the mount (they survive cuts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// `fsync` calls on files (failed ones included).
    pub fsyncs: u64,
    /// `fdatasync` calls on files (failed ones included).
    pub fdatasyncs: u64,
    /// `fsync` calls on directories (failed ones included).
    pub fsyncdirs: u64,
    /// fsync, fdatasync and fsyncdir calls answered with `EIO` by an injected fault.
    pub failed_syncs: u64,
    /// `write` requests that succeeded.
    pub writes: u64,
    /// Bytes accepted by successful writes.
    pub bytes_written: u64,
    /// Bytes copied into the durable image by successful fsync/fdatasync calls (whole blocks,
    /// clipped at the end of the file).
    pub bytes_made_durable: u64,
    /// Power cuts.
    pub cuts: u64,
}

impl Counters {
    /// What happened between `earlier` and `self` (both from the same mount).
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            fsyncs: self.fsyncs - earlier.fsyncs,
            fdatasyncs: self.fdatasyncs - earlier.fdatasyncs,
            fsyncdirs: self.fsyncdirs - earlier.fsyncdirs,
            failed_syncs: self.failed_syncs - earlier.failed_syncs,
            writes: self.writes - earlier.writes,
            bytes_written: self.bytes_written - earlier.bytes_written,
            bytes_made_durable: self.bytes_made_durable - earlier.bytes_made_durable,
            cuts: self.cuts - earlier.cuts,
        }
    }
}

/// What a cut threw away.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CutReport {
    /// Files whose content or size went back to their last fsync.
    pub files_reverted: u64,
    /// Un-synced bytes dropped (whole blocks).
    pub bytes_dropped: u64,
    /// Directories whose entries went back to their last fsyncdir.
    pub dirs_reverted: u64,
    /// Files and directories that no longer exist (never reached a synced directory entry).
    pub nodes_dropped: u64,
    /// The torn writes, one per file that had an un-synced write when the tear applied.
    pub torn_writes: Vec<TornWrite>,
    /// The mount was busy and had to be detached lazily (see the log for who held it).
    pub lazy_unmount: bool,
}

/// One torn write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TornWrite {
    /// Path of the file inside the mount after the cut; `None` if the file is gone.
    pub path: Option<PathBuf>,
    /// Offset of the write.
    pub offset: u64,
    /// Length of the write.
    pub len: u64,
    /// Pieces of the write that survived.
    pub blocks_kept: u64,
    /// Pieces the write had (split at 4 KiB file offsets).
    pub blocks_total: u64,
}

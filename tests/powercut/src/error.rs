//! Errors of mounting, cutting and unmounting, each saying what failed and what to do.

use std::io;
use std::path::PathBuf;

/// Why a mount, cut or unmount failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The FUSE device node does not exist.
    #[error(
        "/dev/fuse is missing: load the fuse module (`modprobe fuse`), or give the container the device (`--device /dev/fuse`)"
    )]
    FuseDeviceMissing,
    /// Not root, and the setuid mount helper is not installed.
    #[error(
        "fusermount3 not found and not running as root: apt-get install fuse3 (or run as root)"
    )]
    FusermountMissing,
    /// The mount point does not exist or is not a directory.
    #[error("mount point {path} is not a directory: create it first")]
    NotADirectory {
        /// The mount point.
        path: PathBuf,
    },
    /// A temporary mount point could not be made.
    #[error("cannot create a temporary mount point: {source}")]
    TempDir {
        /// What the OS said.
        source: io::Error,
    },
    /// The kernel or the mount helper refused the mount.
    #[error("failed to mount the power-cut filesystem at {path}: {source}")]
    Mount {
        /// The mount point.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// Unmounting failed for a reason other than a busy mount.
    #[error("failed to unmount {path}: {source}")]
    Unmount {
        /// The mount point.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// A previous remount failed, so the filesystem is not mounted any more.
    #[error("the power-cut filesystem at {path} is not mounted (a remount after a cut failed)")]
    NotMounted {
        /// The mount point.
        path: PathBuf,
    },
}

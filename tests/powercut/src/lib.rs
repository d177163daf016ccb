//! A power-cut filesystem for tests: a FUSE filesystem that keeps, besides what reads and
//! writes see, the *durable* image a storage device would hold after losing power, and that on
//! command cuts the power — everything not made durable by fsync (files) or fsyncdir
//! (directory entries) is gone, and the last un-synced write of a file may be torn at a 4 KiB
//! boundary. It also plays a slow SD card (fsync latency, write bandwidth), fails on command
//! (`EIO`, `ENOSPC`) and counts fsyncs. The approach is LazyFS's ("lose un-fsynced writes").
//!
//! ```no_run
//! use powercut::{MountOptions, PowerCutFs, Tear};
//!
//! let fs = PowerCutFs::mount_temp(MountOptions::default())?;
//! let path = fs.mountpoint().join("a");
//! std::fs::write(&path, b"not synced")?;
//! fs.cut(Tear::None)?;
//! assert!(!path.exists());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Module map: `content` (sparse copy-on-write file bodies) → `model` (the two images and
//! the rules; no FUSE) → `adapter` (FUSE requests, latency, faults, counters) → `mount`
//! (mount, cut, unmount). `control` is the text protocol of the `powercut mount` socket.

mod adapter;
mod content;
pub mod control;
mod error;
pub mod harness;
mod model;
mod mount;
mod options;

pub use content::BLOCK_SIZE;
pub use error::Error;
pub use mount::{BUSY_RETRY, MountedFs, PowerCutFs};
pub use options::{Counters, CutReport, Fault, MountOptions, Tear, TornWrite};

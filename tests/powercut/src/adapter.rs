//! The FUSE side: turns kernel requests into [`Model`] calls, and adds what the model leaves
//! out — the slow card (fsync latency, bandwidth), injected faults and the counters.
//!
//! Every adapter belongs to one mount *generation*. A cut bumps the generation before the next
//! mount, so a request still arriving through an old, lazily detached mount gets `EIO` instead
//! of touching the state after the cut. Sleeps happen outside the state lock, and an fsync only
//! copies data once it has slept (a cut during the sleep wins). The adapter never unmounts.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use fuser::{
    FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use rand::rngs::StdRng;
use rustix::io::Errno;

use crate::content::BLOCK_SIZE;
use crate::model::{Attr, AttrChange, DirEntry, Ino, Kind, Model, NAME_MAX, NewNode, RenameMode};
use crate::options::{Counters, Fault, MountOptions};

/// How long the kernel may cache attributes and entries. Safe to be long-ish: within one
/// mount only this filesystem changes them, and a cut remounts (a new mount has no cache).
const TTL: Duration = Duration::from_secs(1);

/// File-type bits of a mode, and the value for a regular file.
const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;

/// Size `statfs` reports when no capacity is set: a common SD card.
const DEFAULT_REPORTED_CAPACITY: u64 = 64 << 30;

/// Injected faults currently in force.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    fsync_eio: u32,
    fsyncdir_eio: u32,
    write_eio: Vec<String>,
    fsync_eio_on: Vec<String>,
    capacity: Option<u64>,
}

impl Faults {
    pub(crate) fn inject(&mut self, fault: Fault) {
        match fault {
            Fault::FsyncEio { count } => self.fsync_eio = self.fsync_eio.saturating_add(count),
            Fault::FsyncDirEio { count } => {
                self.fsyncdir_eio = self.fsyncdir_eio.saturating_add(count);
            }
            Fault::WriteEio { path_contains } => self.write_eio.push(path_contains),
            Fault::FsyncEioOn { path_contains } => self.fsync_eio_on.push(path_contains),
            Fault::Capacity { bytes } => self.capacity = Some(bytes),
        }
    }
}

/// Everything a mount's adapters and its owner share; outlives every remount.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) counters: AtomicCounters,
    pub(crate) options: MountOptions,
}

/// The mutable part, under one lock.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) model: Model,
    /// Bumped by every cut; requests from an older mount are refused.
    pub(crate) generation: u64,
    pub(crate) faults: Faults,
    pub(crate) rng: StdRng,
    /// Directory listings taken at opendir, by handle.
    pub(crate) dir_handles: HashMap<u64, Vec<DirEntry>>,
    pub(crate) next_handle: u64,
}

/// Locks a mutex even if a panicking thread poisoned it: the state stays usable for unmounting.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// [`Counters`] as atomics.
#[derive(Debug, Default)]
pub(crate) struct AtomicCounters {
    fsyncs: AtomicU64,
    fdatasyncs: AtomicU64,
    fsyncdirs: AtomicU64,
    failed_syncs: AtomicU64,
    writes: AtomicU64,
    bytes_written: AtomicU64,
    bytes_made_durable: AtomicU64,
    pub(crate) cuts: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

impl AtomicCounters {
    pub(crate) fn snapshot(&self) -> Counters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counters {
            fsyncs: get(&self.fsyncs),
            fdatasyncs: get(&self.fdatasyncs),
            fsyncdirs: get(&self.fsyncdirs),
            failed_syncs: get(&self.failed_syncs),
            writes: get(&self.writes),
            bytes_written: get(&self.bytes_written),
            bytes_made_durable: get(&self.bytes_made_durable),
            cuts: get(&self.cuts),
        }
    }
}

/// The `fuser::Filesystem` of one mount generation.
pub(crate) struct Adapter {
    shared: Arc<Shared>,
    generation: u64,
}

fn fuse_errno(e: Errno) -> fuser::Errno {
    fuser::Errno::from_i32(e.raw_os_error())
}

fn file_type(kind: Kind) -> FileType {
    match kind {
        Kind::File => FileType::RegularFile,
        Kind::Dir => FileType::Directory,
        Kind::Symlink => FileType::Symlink,
    }
}

fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.blocks_512,
        atime: a.atime,
        mtime: a.mtime,
        ctime: a.ctime,
        crtime: a.ctime,
        kind: file_type(a.kind),
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: 0,
        blksize: BLOCK_SIZE as u32,
        flags: 0,
    }
}

fn time(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

/// Does any of `paths` (relative to the root) contain one of `patterns`, seen as `/path`?
fn path_matches(paths: &[std::path::PathBuf], patterns: &[String]) -> bool {
    paths.iter().any(|p| {
        let shown = Path::new("/").join(p);
        let shown = shown.to_string_lossy();
        patterns
            .iter()
            .any(|pattern| shown.contains(pattern.as_str()))
    })
}

impl Adapter {
    pub(crate) fn new(shared: Arc<Shared>, generation: u64) -> Adapter {
        Adapter { shared, generation }
    }

    /// The state, unless this adapter's mount is from before a cut.
    fn state(&self) -> Result<MutexGuard<'_, State>, Errno> {
        let state = lock(&self.shared.state);
        if state.generation != self.generation {
            return Err(Errno::IO);
        }
        Ok(state)
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> Result<T, Errno>) -> Result<T, fuser::Errno> {
        let mut state = self.state().map_err(fuse_errno)?;
        f(&mut state).map_err(fuse_errno)
    }

    /// Sleeps as long as the card needs to make `bytes` durable.
    fn charge(&self, bytes: u64) {
        let options = &self.shared.options;
        let mut delay = options.fsync_latency;
        if let Some(bandwidth) = options.write_bandwidth.filter(|b| *b > 0) {
            delay += Duration::from_secs_f64(bytes as f64 / bandwidth as f64);
        }
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
    }

    fn reply_entry(&self, reply: ReplyEntry, result: Result<Attr, fuser::Errno>) {
        match result {
            Ok(attr) => reply.entry(&TTL, &file_attr(&attr), Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn fsync_file(&self, ino: Ino, datasync: bool) -> Result<(), fuser::Errno> {
        let counters = &self.shared.counters;
        bump(
            if datasync {
                &counters.fdatasyncs
            } else {
                &counters.fsyncs
            },
            1,
        );
        let (fail, pending) = self.with(|st| {
            let fail = if st.faults.fsync_eio > 0 {
                st.faults.fsync_eio -= 1;
                true
            } else {
                !st.faults.fsync_eio_on.is_empty()
                    && path_matches(&st.model.paths_of(ino), &st.faults.fsync_eio_on)
            };
            Ok((fail, st.model.pending_bytes(ino)?))
        })?;
        if fail {
            bump(&counters.failed_syncs, 1);
            self.with(|st| {
                st.model.fsync_failed(ino);
                Ok(())
            })?;
            return Err(fuser::Errno::EIO);
        }
        self.charge(pending);
        let made_durable = self.with(|st| st.model.fsync(ino))?;
        bump(&counters.bytes_made_durable, made_durable);
        Ok(())
    }

    fn fsync_dir(&self, ino: Ino) -> Result<(), fuser::Errno> {
        let counters = &self.shared.counters;
        bump(&counters.fsyncdirs, 1);
        let fail = self.with(|st| {
            if st.faults.fsyncdir_eio > 0 {
                st.faults.fsyncdir_eio -= 1;
                return Ok(true);
            }
            Ok(false)
        })?;
        if fail {
            bump(&counters.failed_syncs, 1);
            return Err(fuser::Errno::EIO);
        }
        self.charge(0);
        self.with(|st| st.model.fsyncdir(ino))
    }

    fn write_checked(&self, ino: Ino, offset: u64, data: &[u8]) -> Result<(), Errno> {
        let mut st = self.state()?;
        if !st.faults.write_eio.is_empty()
            && path_matches(&st.model.paths_of(ino), &st.faults.write_eio)
        {
            return Err(Errno::IO);
        }
        if let Some(capacity) = st.faults.capacity.or(self.shared.options.capacity) {
            let growth = st.model.overlay_growth(ino, offset, data.len() as u64)?;
            if st.model.used_bytes() + growth > capacity {
                return Err(Errno::NOSPC);
            }
        }
        st.model.write(ino, offset, data)
    }
}

impl Filesystem for Adapter {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.reply_entry(reply, self.with(|st| st.model.lookup(parent.0, name)));
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        if let Ok(mut st) = self.state() {
            st.model.forget(ino.0, nlookup);
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.with(|st| st.model.attr(ino.0)) {
            Ok(attr) => reply.attr(&TTL, &file_attr(&attr)),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let change = AttrChange {
            perm: mode.map(|m| (m & 0o7777) as u16),
            uid,
            gid,
            size,
            atime: atime.map(time),
            mtime: mtime.map(time),
        };
        match self.with(|st| st.model.set_attr(ino.0, &change)) {
            Ok(attr) => reply.attr(&TTL, &file_attr(&attr)),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.with(|st| st.model.readlink(ino.0)) {
            Ok(target) => reply.data(target.as_os_str().as_encoded_bytes()),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        if mode & S_IFMT != S_IFREG {
            reply.error(fuser::Errno::EPERM);
            return;
        }
        let result = self.with(|st| {
            st.model.create(
                parent.0,
                name,
                NewNode::File,
                (mode & 0o7777) as u16,
                req.uid(),
                req.gid(),
            )
        });
        self.reply_entry(reply, result);
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let result = self.with(|st| {
            st.model.create(
                parent.0,
                name,
                NewNode::Dir,
                (mode & 0o7777) as u16,
                req.uid(),
                req.gid(),
            )
        });
        self.reply_entry(reply, result);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.with(|st| st.model.unlink(parent.0, name)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.with(|st| st.model.rmdir(parent.0, name)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let result = self.with(|st| {
            st.model.create(
                parent.0,
                link_name,
                NewNode::Symlink(target.to_owned()),
                0o777,
                req.uid(),
                req.gid(),
            )
        });
        self.reply_entry(reply, result);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let mode = if flags.contains(RenameFlags::RENAME_WHITEOUT) {
            reply.error(fuser::Errno::EINVAL);
            return;
        } else if flags.contains(RenameFlags::RENAME_EXCHANGE) {
            RenameMode::Exchange
        } else if flags.contains(RenameFlags::RENAME_NOREPLACE) {
            RenameMode::NoReplace
        } else {
            RenameMode::Replace
        };
        match self.with(|st| st.model.rename(parent.0, name, newparent.0, newname, mode)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        self.reply_entry(
            reply,
            self.with(|st| st.model.link(ino.0, newparent.0, newname)),
        );
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.with(|st| st.model.attr(ino.0)) {
            Ok(attr) if attr.kind == Kind::Dir => reply.error(fuser::Errno::EISDIR),
            // No direct_io and no keep_cache: page cache (and so shared mmap) works, and each
            // open starts from what this filesystem says.
            Ok(_) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        match self.with(|st| st.model.read(ino.0, offset, u64::from(size))) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.write_checked(ino.0, offset, data) {
            Ok(()) => {
                let counters = &self.shared.counters;
                bump(&counters.writes, 1);
                bump(&counters.bytes_written, data.len() as u64);
                reply.written(data.len() as u32);
            }
            Err(e) => reply.error(fuse_errno(e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: fuser::LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.fsync_file(ino.0, datasync) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let result = self.with(|st| {
            let entries = st.model.readdir(ino.0)?;
            st.next_handle += 1;
            let handle = st.next_handle;
            st.dir_handles.insert(handle, entries);
            Ok(handle)
        });
        match result {
            Ok(handle) => reply.opened(FileHandle(handle), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let entries = self.with(|st| st.dir_handles.get(&fh.0).cloned().ok_or(Errno::BADF));
        match entries {
            Ok(entries) => {
                for (index, entry) in entries.iter().enumerate().skip(offset as usize) {
                    let full = reply.add(
                        INodeNo(entry.ino),
                        index as u64 + 1,
                        file_type(entry.kind),
                        &entry.name,
                    );
                    if full {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        if let Ok(mut st) = self.state() {
            st.dir_handles.remove(&fh.0);
        }
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.fsync_dir(ino.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let result = self.with(|st| {
            let capacity = st
                .faults
                .capacity
                .or(self.shared.options.capacity)
                .unwrap_or(DEFAULT_REPORTED_CAPACITY);
            Ok((capacity, st.model.used_bytes(), st.model.node_count()))
        });
        match result {
            Ok((capacity, used, nodes)) => {
                let blocks = capacity / BLOCK_SIZE;
                let free = capacity.saturating_sub(used) / BLOCK_SIZE;
                let files = 1 << 20;
                reply.statfs(
                    blocks,
                    free,
                    free,
                    files,
                    files - nodes.min(files),
                    BLOCK_SIZE as u32,
                    NAME_MAX as u32,
                    BLOCK_SIZE as u32,
                );
            }
            Err(e) => reply.error(e),
        }
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        match self.with(|st| st.model.attr(ino.0)) {
            Ok(_) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let result = self.with(|st| {
            st.model.create(
                parent.0,
                name,
                NewNode::File,
                (mode & 0o7777) as u16,
                req.uid(),
                req.gid(),
            )
        });
        match result {
            Ok(attr) => reply.created(
                &TTL,
                &file_attr(&attr),
                Generation(0),
                FileHandle(0),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }

    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: ReplyXattr,
    ) {
        // ENOSYS tells the kernel once that there are no extended attributes, so it stops asking
        // (it would ask for security.capability before every write).
        reply.error(fuser::Errno::ENOSYS);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, _size: u32, reply: ReplyXattr) {
        reply.error(fuser::Errno::ENOSYS);
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        const FALLOC_FL_KEEP_SIZE: i32 = 1;
        if mode & !FALLOC_FL_KEEP_SIZE != 0 {
            reply.error(fuser::Errno::from_i32(Errno::OPNOTSUPP.raw_os_error()));
            return;
        }
        let keep_size = mode & FALLOC_FL_KEEP_SIZE != 0;
        match self.with(|st| st.model.allocate(ino.0, offset, length, keep_size)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}

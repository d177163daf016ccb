//! The filesystem as two images: the *durable* one (what survives a power cut) and the *live*
//! one that reads and writes see (durable plus the un-synced overlay).
//!
//! Rules, each one the strict reading of POSIX that LazyFS also takes:
//! - a file's data and length become durable only through fsync/fdatasync of that file;
//! - a directory's entries (create, unlink, rename, mkdir, rmdir, link, symlink) become durable
//!   only through an fsync of that directory. A file that was fsynced but whose entry never was
//!   is gone after a cut. A rename between two directories is one transaction, as in a journal:
//!   an fsync of either directory makes both sides durable, so a cut leaves the old name or the
//!   new one, never both or neither;
//! - an fsync that failed (injected `EIO`) leaves the blocks it should have written un-synced
//!   for good: a later fsync does not write them unless they are written again (Linux marks such
//!   pages clean), so the next cut loses them;
//! - a cut drops the live image and starts again from the durable one, optionally keeping the
//!   first blocks of each file's last un-synced write (a torn write).
//!
//! Metadata (mode, owner, times) is not versioned: it keeps its last value across a cut.
//! This module knows nothing of FUSE, mounts, latency or fault injection; errors are errno
//! values for the adapter to pass on.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::time::SystemTime;

use rand::Rng;
use rustix::io::Errno;

use crate::content::{BLOCK_SIZE, Content, block_of, blocks_for};
use crate::options::{CutReport, Tear, TornWrite};

/// Inode number; stable for a node's life, never reused.
pub(crate) type Ino = u64;

/// Inode number of the root directory.
pub(crate) const ROOT: Ino = 1;

/// Longest name a directory accepts.
pub(crate) const NAME_MAX: usize = 255;

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
}

/// Attributes as `stat` shows them (live view).
#[derive(Clone, Debug)]
pub(crate) struct Attr {
    pub(crate) ino: Ino,
    pub(crate) kind: Kind,
    pub(crate) size: u64,
    pub(crate) blocks_512: u64,
    pub(crate) perm: u16,
    pub(crate) nlink: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) atime: SystemTime,
    pub(crate) mtime: SystemTime,
    pub(crate) ctime: SystemTime,
}

/// A `setattr` request; `None` leaves a field alone.
#[derive(Clone, Debug, Default)]
pub(crate) struct AttrChange {
    pub(crate) perm: Option<u16>,
    pub(crate) uid: Option<u32>,
    pub(crate) gid: Option<u32>,
    pub(crate) size: Option<u64>,
    pub(crate) atime: Option<SystemTime>,
    pub(crate) mtime: Option<SystemTime>,
}

/// What `create` makes.
#[derive(Clone, Debug)]
pub(crate) enum NewNode {
    File,
    Dir,
    Symlink(PathBuf),
}

/// How `rename` treats an existing target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RenameMode {
    Replace,
    NoReplace,
    Exchange,
}

/// One directory entry as `readdir` lists it.
#[derive(Clone, Debug)]
pub(crate) struct DirEntry {
    pub(crate) ino: Ino,
    pub(crate) kind: Kind,
    pub(crate) name: OsString,
}

#[derive(Clone, Debug)]
struct Meta {
    perm: u16,
    uid: u32,
    gid: u32,
    atime: SystemTime,
    mtime: SystemTime,
    ctime: SystemTime,
}

#[derive(Clone, Debug, Default)]
struct FileBody {
    live: Content,
    durable: Content,
    /// Blocks written since the last successful sync.
    dirty: BTreeSet<u64>,
    /// Smallest length a truncate set since the last sync.
    shrunk_to: Option<u64>,
    /// Offset and length of the last write since the last sync (the candidate for a tear).
    last_write: Option<(u64, u64)>,
}

impl FileBody {
    fn has_unsynced(&self) -> bool {
        !self.dirty.is_empty() || self.shrunk_to.is_some() || self.live.len() != self.durable.len()
    }

    fn pending_bytes(&self) -> u64 {
        let len = self.live.len();
        self.dirty
            .range(..blocks_for(len))
            .map(|&index| (len - index * BLOCK_SIZE).min(BLOCK_SIZE))
            .sum()
    }

    fn truncate(&mut self, len: u64) {
        if len < self.live.len() {
            self.shrunk_to = Some(self.shrunk_to.map_or(len, |s| s.min(len)));
        }
        self.live.set_len(len);
        self.last_write = None;
    }

    /// Makes the live data and length durable; returns the bytes copied.
    fn sync(&mut self) -> u64 {
        let bytes = self.pending_bytes();
        if let Some(len) = self.shrunk_to.take() {
            self.durable.set_len(len.min(self.durable.len()));
        }
        let live_blocks = blocks_for(self.live.len());
        for index in std::mem::take(&mut self.dirty) {
            if index < live_blocks {
                self.durable.copy_block_from(&self.live, index);
            }
        }
        // Growing keeps the copied blocks; shrinking drops durable blocks past the end.
        self.durable.set_len(self.live.len());
        self.last_write = None;
        bytes
    }
}

#[derive(Clone, Debug)]
struct DirBody {
    live: BTreeMap<OsString, Ino>,
    durable: BTreeMap<OsString, Ino>,
    /// Live parent (itself for the root).
    parent: Ino,
    /// Directories that a pending cross-directory rename ties to this one.
    tied: BTreeSet<Ino>,
}

#[derive(Clone, Debug)]
enum Body {
    File(FileBody),
    Dir(DirBody),
    Symlink(PathBuf),
}

#[derive(Clone, Debug)]
struct Node {
    body: Body,
    meta: Meta,
    /// Live directory entries naming this node.
    links: u32,
    /// Durable directory entries naming this node (in any directory still in the table).
    durable_links: u32,
    /// Kernel lookups not yet forgotten.
    lookups: u64,
}

impl Node {
    fn kind(&self) -> Kind {
        match self.body {
            Body::File(_) => Kind::File,
            Body::Dir(_) => Kind::Dir,
            Body::Symlink(_) => Kind::Symlink,
        }
    }
}

/// The whole filesystem: both images of every node.
#[derive(Debug)]
pub(crate) struct Model {
    nodes: HashMap<Ino, Node>,
    next_ino: Ino,
}

fn now() -> SystemTime {
    SystemTime::now()
}

impl Model {
    /// An empty filesystem whose root belongs to `uid:gid`.
    pub(crate) fn new(uid: u32, gid: u32) -> Model {
        let t = now();
        let root = Node {
            body: Body::Dir(DirBody {
                live: BTreeMap::new(),
                durable: BTreeMap::new(),
                parent: ROOT,
                tied: BTreeSet::new(),
            }),
            meta: Meta {
                perm: 0o755,
                uid,
                gid,
                atime: t,
                mtime: t,
                ctime: t,
            },
            links: 1,
            durable_links: 1,
            lookups: 0,
        };
        Model {
            nodes: HashMap::from([(ROOT, root)]),
            next_ino: ROOT + 1,
        }
    }

    fn node(&self, ino: Ino) -> Result<&Node, Errno> {
        self.nodes.get(&ino).ok_or(Errno::NOENT)
    }

    fn node_mut(&mut self, ino: Ino) -> Result<&mut Node, Errno> {
        self.nodes.get_mut(&ino).ok_or(Errno::NOENT)
    }

    fn dir(&self, ino: Ino) -> Result<&DirBody, Errno> {
        match &self.node(ino)?.body {
            Body::Dir(d) => Ok(d),
            _ => Err(Errno::NOTDIR),
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> Result<&mut DirBody, Errno> {
        match &mut self.node_mut(ino)?.body {
            Body::Dir(d) => Ok(d),
            _ => Err(Errno::NOTDIR),
        }
    }

    fn file_mut(&mut self, ino: Ino) -> Result<&mut FileBody, Errno> {
        match &mut self.node_mut(ino)?.body {
            Body::File(f) => Ok(f),
            Body::Dir(_) => Err(Errno::ISDIR),
            Body::Symlink(_) => Err(Errno::INVAL),
        }
    }

    fn file(&self, ino: Ino) -> Result<&FileBody, Errno> {
        match &self.node(ino)?.body {
            Body::File(f) => Ok(f),
            Body::Dir(_) => Err(Errno::ISDIR),
            Body::Symlink(_) => Err(Errno::INVAL),
        }
    }

    /// Live attributes of `ino`.
    pub(crate) fn attr(&self, ino: Ino) -> Result<Attr, Errno> {
        let node = self.node(ino)?;
        let (size, blocks, nlink) = match &node.body {
            Body::File(f) => (f.live.len(), f.live.allocated_blocks(), node.links),
            Body::Dir(d) => {
                let subdirs = d
                    .live
                    .values()
                    .filter(|i| self.nodes.get(i).is_some_and(|n| n.kind() == Kind::Dir))
                    .count() as u32;
                let nlink = if node.links > 0 { 2 + subdirs } else { 0 };
                (BLOCK_SIZE, 1, nlink)
            }
            Body::Symlink(target) => (target.as_os_str().len() as u64, 0, node.links),
        };
        Ok(Attr {
            ino,
            kind: node.kind(),
            size,
            blocks_512: blocks * (BLOCK_SIZE / 512),
            perm: node.meta.perm,
            nlink,
            uid: node.meta.uid,
            gid: node.meta.gid,
            atime: node.meta.atime,
            mtime: node.meta.mtime,
            ctime: node.meta.ctime,
        })
    }

    /// Looks `name` up in `parent` and counts a kernel reference to it.
    pub(crate) fn lookup(&mut self, parent: Ino, name: &OsStr) -> Result<Attr, Errno> {
        let ino = *self.dir(parent)?.live.get(name).ok_or(Errno::NOENT)?;
        self.node_mut(ino)?.lookups += 1;
        self.attr(ino)
    }

    /// Drops `n` kernel references to `ino`, freeing it if nothing names it any more.
    pub(crate) fn forget(&mut self, ino: Ino, n: u64) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.lookups = node.lookups.saturating_sub(n);
            self.free_if_unused(vec![ino]);
        }
    }

    fn free_if_unused(&mut self, mut candidates: Vec<Ino>) {
        while let Some(ino) = candidates.pop() {
            let unused = ino != ROOT
                && self
                    .nodes
                    .get(&ino)
                    .is_some_and(|n| n.links == 0 && n.lookups == 0 && n.durable_links == 0);
            if !unused {
                continue;
            }
            if let Some(Node {
                body: Body::Dir(d), ..
            }) = self.nodes.remove(&ino)
            {
                for child in d.durable.into_values() {
                    if let Some(c) = self.nodes.get_mut(&child) {
                        c.durable_links = c.durable_links.saturating_sub(1);
                        candidates.push(child);
                    }
                }
            }
        }
    }

    /// Applies a `setattr`; a size change truncates or extends (un-synced).
    pub(crate) fn set_attr(&mut self, ino: Ino, change: &AttrChange) -> Result<Attr, Errno> {
        if let Some(size) = change.size {
            self.file_mut(ino)?.truncate(size);
        }
        let node = self.node_mut(ino)?;
        let t = now();
        if let Some(perm) = change.perm {
            node.meta.perm = perm & 0o7777;
        }
        if let Some(uid) = change.uid {
            node.meta.uid = uid;
        }
        if let Some(gid) = change.gid {
            node.meta.gid = gid;
        }
        if let Some(atime) = change.atime {
            node.meta.atime = atime;
        }
        if let Some(mtime) = change.mtime {
            node.meta.mtime = mtime;
        } else if change.size.is_some() {
            node.meta.mtime = t;
        }
        node.meta.ctime = t;
        self.attr(ino)
    }

    /// Target of a symbolic link.
    pub(crate) fn readlink(&self, ino: Ino) -> Result<PathBuf, Errno> {
        match &self.node(ino)?.body {
            Body::Symlink(target) => Ok(target.clone()),
            _ => Err(Errno::INVAL),
        }
    }

    fn check_new_name(&self, parent: Ino, name: &OsStr) -> Result<(), Errno> {
        if name.len() > NAME_MAX {
            return Err(Errno::NAMETOOLONG);
        }
        let node = self.node(parent)?;
        let dir = self.dir(parent)?;
        if node.links == 0 {
            return Err(Errno::NOENT);
        }
        if dir.live.contains_key(name) {
            return Err(Errno::EXIST);
        }
        Ok(())
    }

    /// Creates a file, directory or symlink (its entry un-synced) and counts a lookup.
    pub(crate) fn create(
        &mut self,
        parent: Ino,
        name: &OsStr,
        new: NewNode,
        perm: u16,
        uid: u32,
        gid: u32,
    ) -> Result<Attr, Errno> {
        self.check_new_name(parent, name)?;
        let ino = self.next_ino;
        self.next_ino += 1;
        let body = match new {
            NewNode::File => Body::File(FileBody::default()),
            NewNode::Dir => Body::Dir(DirBody {
                live: BTreeMap::new(),
                durable: BTreeMap::new(),
                parent,
                tied: BTreeSet::new(),
            }),
            NewNode::Symlink(target) => Body::Symlink(target),
        };
        let t = now();
        self.nodes.insert(
            ino,
            Node {
                body,
                meta: Meta {
                    perm: perm & 0o7777,
                    uid,
                    gid,
                    atime: t,
                    mtime: t,
                    ctime: t,
                },
                links: 1,
                durable_links: 0,
                lookups: 1,
            },
        );
        self.dir_mut(parent)?.live.insert(name.to_owned(), ino);
        self.touch(parent);
        self.attr(ino)
    }

    fn touch(&mut self, ino: Ino) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            let t = now();
            node.meta.mtime = t;
            node.meta.ctime = t;
        }
    }

    /// Adds a hard link `newparent/newname` to the file or symlink `ino`.
    pub(crate) fn link(
        &mut self,
        ino: Ino,
        newparent: Ino,
        newname: &OsStr,
    ) -> Result<Attr, Errno> {
        if self.node(ino)?.kind() == Kind::Dir {
            return Err(Errno::PERM);
        }
        self.check_new_name(newparent, newname)?;
        self.dir_mut(newparent)?
            .live
            .insert(newname.to_owned(), ino);
        let node = self.node_mut(ino)?;
        node.links += 1;
        node.lookups += 1;
        node.meta.ctime = now();
        self.touch(newparent);
        self.attr(ino)
    }

    /// Removes the entry `parent/name` of a file or symlink.
    pub(crate) fn unlink(&mut self, parent: Ino, name: &OsStr) -> Result<(), Errno> {
        let ino = *self.dir(parent)?.live.get(name).ok_or(Errno::NOENT)?;
        if self.node(ino)?.kind() == Kind::Dir {
            return Err(Errno::ISDIR);
        }
        self.dir_mut(parent)?.live.remove(name);
        self.drop_link(ino);
        self.touch(parent);
        self.free_if_unused(vec![ino]);
        Ok(())
    }

    fn drop_link(&mut self, ino: Ino) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.links = node.links.saturating_sub(1);
            node.meta.ctime = now();
        }
    }

    /// Removes the empty directory `parent/name`.
    pub(crate) fn rmdir(&mut self, parent: Ino, name: &OsStr) -> Result<(), Errno> {
        let ino = *self.dir(parent)?.live.get(name).ok_or(Errno::NOENT)?;
        if !self.dir(ino)?.live.is_empty() {
            return Err(Errno::NOTEMPTY);
        }
        self.dir_mut(parent)?.live.remove(name);
        self.drop_link(ino);
        self.touch(parent);
        self.free_if_unused(vec![ino]);
        Ok(())
    }

    fn is_ancestor(&self, ancestor: Ino, mut ino: Ino) -> bool {
        loop {
            if ino == ancestor {
                return true;
            }
            match self.dir(ino) {
                Ok(d) if d.parent != ino => ino = d.parent,
                _ => return false,
            }
        }
    }

    /// Renames `parent/name` to `newparent/newname` (un-synced in both directories).
    pub(crate) fn rename(
        &mut self,
        parent: Ino,
        name: &OsStr,
        newparent: Ino,
        newname: &OsStr,
        mode: RenameMode,
    ) -> Result<(), Errno> {
        if newname.len() > NAME_MAX {
            return Err(Errno::NAMETOOLONG);
        }
        let src = *self.dir(parent)?.live.get(name).ok_or(Errno::NOENT)?;
        let dst = self.dir(newparent)?.live.get(newname).copied();
        let src_kind = self.node(src)?.kind();
        if src_kind == Kind::Dir && self.is_ancestor(src, newparent) {
            return Err(Errno::INVAL);
        }
        match (mode, dst) {
            (RenameMode::Exchange, None) => return Err(Errno::NOENT),
            (RenameMode::Exchange, Some(dst)) => {
                if self.node(dst)?.kind() == Kind::Dir && self.is_ancestor(dst, parent) {
                    return Err(Errno::INVAL);
                }
                self.dir_mut(parent)?.live.insert(name.to_owned(), dst);
                self.dir_mut(newparent)?
                    .live
                    .insert(newname.to_owned(), src);
                self.set_parent(dst, parent);
                self.set_parent(src, newparent);
            }
            (RenameMode::NoReplace, Some(_)) => return Err(Errno::EXIST),
            (_, Some(dst)) if dst == src => return Ok(()),
            (_, dst) => {
                if let Some(dst) = dst {
                    let dst_kind = self.node(dst)?.kind();
                    match (src_kind, dst_kind) {
                        (Kind::Dir, Kind::Dir) if !self.dir(dst)?.live.is_empty() => {
                            return Err(Errno::NOTEMPTY);
                        }
                        (Kind::Dir, Kind::Dir) => {}
                        (Kind::Dir, _) => return Err(Errno::NOTDIR),
                        (_, Kind::Dir) => return Err(Errno::ISDIR),
                        _ => {}
                    }
                    self.drop_link(dst);
                }
                self.dir_mut(parent)?.live.remove(name);
                self.dir_mut(newparent)?
                    .live
                    .insert(newname.to_owned(), src);
                self.set_parent(src, newparent);
                if let Some(dst) = dst {
                    self.free_if_unused(vec![dst]);
                }
            }
        }
        if parent != newparent {
            self.dir_mut(parent)?.tied.insert(newparent);
            self.dir_mut(newparent)?.tied.insert(parent);
        }
        self.touch(parent);
        self.touch(newparent);
        if let Some(node) = self.nodes.get_mut(&src) {
            node.meta.ctime = now();
        }
        Ok(())
    }

    fn set_parent(&mut self, ino: Ino, parent: Ino) {
        if let Ok(d) = self.dir_mut(ino) {
            d.parent = parent;
        }
    }

    /// Live entries of a directory, `.` and `..` first.
    pub(crate) fn readdir(&self, ino: Ino) -> Result<Vec<DirEntry>, Errno> {
        let dir = self.dir(ino)?;
        let mut entries = vec![
            DirEntry {
                ino,
                kind: Kind::Dir,
                name: ".".into(),
            },
            DirEntry {
                ino: dir.parent,
                kind: Kind::Dir,
                name: "..".into(),
            },
        ];
        for (name, &child) in &dir.live {
            if let Some(node) = self.nodes.get(&child) {
                entries.push(DirEntry {
                    ino: child,
                    kind: node.kind(),
                    name: name.clone(),
                });
            }
        }
        Ok(entries)
    }

    /// Reads up to `size` bytes of the live view at `offset`.
    pub(crate) fn read(&self, ino: Ino, offset: u64, size: u64) -> Result<Vec<u8>, Errno> {
        Ok(self.file(ino)?.live.read(offset, size))
    }

    /// Bytes a write of `len` bytes at `offset` would add to the un-synced overlay.
    pub(crate) fn overlay_growth(&self, ino: Ino, offset: u64, len: u64) -> Result<u64, Errno> {
        let file = self.file(ino)?;
        if len == 0 {
            return Ok(0);
        }
        let new_blocks = (block_of(offset)..=block_of(offset + len - 1))
            .filter(|index| !file.dirty.contains(index))
            .count() as u64;
        Ok(new_blocks * BLOCK_SIZE)
    }

    /// Writes into the live view (un-synced).
    pub(crate) fn write(&mut self, ino: Ino, offset: u64, data: &[u8]) -> Result<(), Errno> {
        offset
            .checked_add(data.len() as u64)
            .filter(|end| *end <= i64::MAX as u64)
            .ok_or(Errno::FBIG)?;
        let file = self.file_mut(ino)?;
        if data.is_empty() {
            return Ok(());
        }
        let end = offset + data.len() as u64;
        file.dirty.extend(block_of(offset)..=block_of(end - 1));
        file.live.write(offset, data);
        file.last_write = Some((offset, data.len() as u64));
        self.touch(ino);
        Ok(())
    }

    /// `fallocate` without hole punching: may extend the length (un-synced); allocates nothing.
    pub(crate) fn allocate(
        &mut self,
        ino: Ino,
        offset: u64,
        len: u64,
        keep_size: bool,
    ) -> Result<(), Errno> {
        let end = offset.checked_add(len).ok_or(Errno::FBIG)?;
        let file = self.file_mut(ino)?;
        if !keep_size && end > file.live.len() {
            file.live.set_len(end);
            file.last_write = None;
            self.touch(ino);
        }
        Ok(())
    }

    /// Bytes an fsync of `ino` would copy into the durable image.
    pub(crate) fn pending_bytes(&self, ino: Ino) -> Result<u64, Errno> {
        match &self.node(ino)?.body {
            Body::File(f) => Ok(f.pending_bytes()),
            _ => Ok(0),
        }
    }

    /// fsync/fdatasync: makes the file's data and length durable; returns the bytes copied.
    pub(crate) fn fsync(&mut self, ino: Ino) -> Result<u64, Errno> {
        match &mut self.node_mut(ino)?.body {
            Body::File(f) => Ok(f.sync()),
            _ => Ok(0),
        }
    }

    /// An fsync of `ino` failed: what it should have written will not be written by a later
    /// fsync (like Linux after a writeback error); the live view still shows it until a cut.
    pub(crate) fn fsync_failed(&mut self, ino: Ino) {
        if let Ok(f) = self.file_mut(ino) {
            f.dirty.clear();
            f.last_write = None;
        }
    }

    /// fsyncdir: makes the live entries of `ino` durable, and those of every directory a pending
    /// cross-directory rename ties it to.
    pub(crate) fn fsyncdir(&mut self, ino: Ino) -> Result<(), Errno> {
        self.dir(ino)?;
        let mut todo = vec![ino];
        let mut done = BTreeSet::new();
        let mut released = Vec::new();
        while let Some(dir_ino) = todo.pop() {
            if !done.insert(dir_ino) {
                continue;
            }
            let Ok(dir) = self.dir_mut(dir_ino) else {
                continue;
            };
            todo.extend(std::mem::take(&mut dir.tied));
            let old = std::mem::replace(&mut dir.durable, dir.live.clone());
            let new = dir.durable.clone();
            for (name, child) in &old {
                if new.get(name) != Some(child) {
                    if let Some(n) = self.nodes.get_mut(child) {
                        n.durable_links = n.durable_links.saturating_sub(1);
                    }
                    released.push(*child);
                }
            }
            for (name, child) in &new {
                if old.get(name) != Some(child)
                    && let Some(n) = self.nodes.get_mut(child)
                {
                    n.durable_links += 1;
                }
            }
        }
        self.free_if_unused(released);
        Ok(())
    }

    /// Durable plus un-synced bytes, the measure a capacity applies to.
    pub(crate) fn used_bytes(&self) -> u64 {
        self.nodes
            .values()
            .map(|n| match &n.body {
                Body::File(f) => f.durable.len() + f.dirty.len() as u64 * BLOCK_SIZE,
                _ => 0,
            })
            .sum()
    }

    /// Number of nodes in the table.
    pub(crate) fn node_count(&self) -> u64 {
        self.nodes.len() as u64
    }

    /// Every live path of `ino`, relative to the root.
    pub(crate) fn paths_of(&self, ino: Ino) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut stack = vec![(ROOT, PathBuf::new())];
        let mut seen = BTreeSet::new();
        while let Some((dir_ino, path)) = stack.pop() {
            if !seen.insert(dir_ino) {
                continue;
            }
            let Ok(dir) = self.dir(dir_ino) else {
                continue;
            };
            for (name, &child) in &dir.live {
                let child_path = path.join(name);
                if child == ino {
                    found.push(child_path.clone());
                }
                if self
                    .nodes
                    .get(&child)
                    .is_some_and(|n| n.kind() == Kind::Dir)
                {
                    stack.push((child, child_path));
                }
            }
        }
        found
    }

    /// The power cut: tear each file's last un-synced write as `tear` says, then make the live
    /// image the durable one and forget every node no durable entry reaches.
    pub(crate) fn cut(&mut self, tear: Tear, rng: &mut impl Rng) -> CutReport {
        let mut report = CutReport::default();
        let mut torn = Vec::new();
        for (&ino, node) in &mut self.nodes {
            match &mut node.body {
                Body::File(f) => {
                    if let (Some((offset, len)), false) = (f.last_write, tear == Tear::None) {
                        let total = block_of(offset + len - 1) - block_of(offset) + 1;
                        let kept = match tear {
                            Tear::None => 0,
                            Tear::Blocks(k) => k.min(total),
                            Tear::Random => rng.random_range(0..=total),
                        };
                        if kept > 0 {
                            let end = (offset + len).min((block_of(offset) + kept) * BLOCK_SIZE);
                            let data = f.live.read(offset, end - offset);
                            f.durable.write(offset, &data);
                        }
                        torn.push((ino, offset, len, kept, total));
                    }
                    if f.has_unsynced() {
                        report.files_reverted += 1;
                        report.bytes_dropped += f.pending_bytes();
                    }
                    f.live = f.durable.clone();
                    f.dirty.clear();
                    f.shrunk_to = None;
                    f.last_write = None;
                }
                Body::Dir(d) => {
                    if d.live != d.durable {
                        report.dirs_reverted += 1;
                    }
                    d.live = d.durable.clone();
                    d.tied.clear();
                }
                Body::Symlink(_) => {}
            }
        }
        report.nodes_dropped = self.rebuild_from_root();
        for (ino, offset, len, blocks_kept, blocks_total) in torn {
            report.torn_writes.push(TornWrite {
                path: self.paths_of(ino).into_iter().next(),
                offset,
                len,
                blocks_kept,
                blocks_total,
            });
        }
        report.torn_writes.sort_by(|a, b| a.path.cmp(&b.path));
        report
    }

    /// Keeps the nodes the root reaches, recounts links, resets lookups; returns nodes dropped.
    fn rebuild_from_root(&mut self) -> u64 {
        let mut links: HashMap<Ino, u32> = HashMap::from([(ROOT, 1)]);
        let mut parents: Vec<(Ino, Ino)> = Vec::new();
        let mut stack = vec![ROOT];
        while let Some(dir_ino) = stack.pop() {
            let Ok(dir) = self.dir(dir_ino) else {
                continue;
            };
            for &child in dir.live.values() {
                let count = links.entry(child).or_insert(0);
                *count += 1;
                if *count == 1
                    && self
                        .nodes
                        .get(&child)
                        .is_some_and(|n| n.kind() == Kind::Dir)
                {
                    parents.push((child, dir_ino));
                    stack.push(child);
                }
            }
        }
        let before = self.nodes.len();
        self.nodes.retain(|ino, _| links.contains_key(ino));
        for (&ino, node) in &mut self.nodes {
            node.links = links[&ino];
            node.durable_links = links[&ino];
            node.lookups = 0;
        }
        for (child, parent) in parents {
            self.set_parent(child, parent);
        }
        (before - self.nodes.len()) as u64
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn model() -> Model {
        Model::new(0, 0)
    }

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    fn file(m: &mut Model, parent: Ino, name: &str) -> Ino {
        m.create(parent, OsStr::new(name), NewNode::File, 0o644, 0, 0)
            .unwrap()
            .ino
    }

    fn names(m: &Model, dir: Ino) -> Vec<String> {
        m.readdir(dir)
            .unwrap()
            .into_iter()
            .skip(2)
            .map(|e| e.name.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn only_fsynced_data_and_synced_entries_survive_a_cut() {
        let mut m = model();
        let a = file(&mut m, ROOT, "a");
        m.write(a, 0, b"durable").unwrap();
        m.fsync(a).unwrap();
        m.fsyncdir(ROOT).unwrap();
        m.write(a, 0, b"LOST!!!").unwrap();
        let b = file(&mut m, ROOT, "b");
        m.write(b, 0, b"never named durably").unwrap();
        m.fsync(b).unwrap();
        let report = m.cut(Tear::None, &mut rng());
        assert_eq!(names(&m, ROOT), ["a"]);
        assert_eq!(m.read(a, 0, 100).unwrap(), b"durable");
        assert_eq!(report.nodes_dropped, 1);
        assert_eq!(report.dirs_reverted, 1);
    }

    #[test]
    fn a_failed_fsync_loses_its_blocks_even_after_a_later_fsync() {
        let mut m = model();
        let a = file(&mut m, ROOT, "a");
        m.fsyncdir(ROOT).unwrap();
        m.write(a, 0, &[1u8; 5000]).unwrap();
        m.fsync_failed(a);
        assert_eq!(m.read(a, 0, 1).unwrap(), [1]);
        m.fsync(a).unwrap();
        m.cut(Tear::None, &mut rng());
        assert_eq!(m.read(a, 0, 5000).unwrap(), vec![0u8; 5000]);
    }

    #[test]
    fn truncate_then_regrow_does_not_resurrect_old_durable_bytes() {
        let mut m = model();
        let a = file(&mut m, ROOT, "a");
        m.fsyncdir(ROOT).unwrap();
        m.write(a, 0, &[9u8; 8192]).unwrap();
        m.fsync(a).unwrap();
        let grow = AttrChange {
            size: Some(0),
            ..AttrChange::default()
        };
        m.set_attr(a, &grow).unwrap();
        m.set_attr(
            a,
            &AttrChange {
                size: Some(8192),
                ..AttrChange::default()
            },
        )
        .unwrap();
        m.fsync(a).unwrap();
        m.cut(Tear::None, &mut rng());
        assert_eq!(m.read(a, 0, 8192).unwrap(), vec![0u8; 8192]);
    }

    #[test]
    fn cross_directory_rename_is_made_durable_by_either_directory() {
        for synced in ["src", "dst"] {
            let mut m = model();
            let src = m
                .create(ROOT, OsStr::new("src"), NewNode::Dir, 0o755, 0, 0)
                .unwrap()
                .ino;
            let dst = m
                .create(ROOT, OsStr::new("dst"), NewNode::Dir, 0o755, 0, 0)
                .unwrap()
                .ino;
            file(&mut m, src, "f");
            m.fsyncdir(ROOT).unwrap();
            m.fsyncdir(src).unwrap();
            m.fsyncdir(dst).unwrap();
            m.rename(
                src,
                OsStr::new("f"),
                dst,
                OsStr::new("g"),
                RenameMode::Replace,
            )
            .unwrap();
            m.fsyncdir(if synced == "src" { src } else { dst }).unwrap();
            m.cut(Tear::None, &mut rng());
            assert!(names(&m, src).is_empty(), "synced {synced}");
            assert_eq!(names(&m, dst), ["g"], "synced {synced}");
        }
    }

    #[test]
    fn an_unlinked_durable_file_is_kept_until_the_unlink_is_synced() {
        let mut m = model();
        let a = file(&mut m, ROOT, "a");
        m.write(a, 0, b"x").unwrap();
        m.fsync(a).unwrap();
        m.fsyncdir(ROOT).unwrap();
        m.forget(a, 1);
        m.unlink(ROOT, OsStr::new("a")).unwrap();
        assert_eq!(m.node_count(), 2, "durable entry keeps the node");
        m.fsyncdir(ROOT).unwrap();
        assert_eq!(m.node_count(), 1, "freed once nothing names it");
    }

    #[test]
    fn tear_keeps_the_first_blocks_of_the_last_write_only() {
        let mut m = model();
        let a = file(&mut m, ROOT, "a");
        m.fsyncdir(ROOT).unwrap();
        m.write(a, 0, &[1u8; 8192]).unwrap();
        m.write(a, 8192, &[2u8; 4 * 4096]).unwrap();
        let report = m.cut(Tear::Blocks(3), &mut rng());
        assert_eq!(report.torn_writes.len(), 1);
        assert_eq!(report.torn_writes[0].blocks_kept, 3);
        assert_eq!(report.torn_writes[0].blocks_total, 4);
        assert_eq!(m.attr(a).unwrap().size, 8192 + 3 * 4096);
        assert_eq!(m.read(a, 0, 8192).unwrap(), vec![0u8; 8192]);
        assert_eq!(m.read(a, 8192, 3 * 4096).unwrap(), vec![2u8; 3 * 4096]);
    }

    #[test]
    fn an_unaligned_write_tears_at_file_block_boundaries() {
        let mut m = model();
        let a = file(&mut m, ROOT, "a");
        m.fsyncdir(ROOT).unwrap();
        m.write(a, 4000, &[3u8; 5000]).unwrap();
        let report = m.cut(Tear::Blocks(1), &mut rng());
        assert_eq!(report.torn_writes[0].blocks_total, 3);
        assert_eq!(m.attr(a).unwrap().size, 4096);
        assert_eq!(m.read(a, 4000, 96).unwrap(), vec![3u8; 96]);
    }
}

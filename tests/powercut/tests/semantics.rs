//! The filesystem's promises, checked through real system calls on a real mount: what a cut
//! keeps and drops, tears, the slow card, injected faults, counters and clean unmounts.
//! Needs root (or fusermount3) and /dev/fuse, as the tests of the hub that use it.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use powercut::{Fault, MountOptions, MountedFs, PowerCutFs, Tear};
use rustix::io::Errno;

fn mount() -> MountedFs {
    mount_with(MountOptions::default())
}

fn mount_with(options: MountOptions) -> MountedFs {
    PowerCutFs::mount_temp(options).expect("mount the power-cut filesystem")
}

fn fsync_dir(dir: &Path) {
    File::open(dir).unwrap().sync_all().unwrap();
}

/// Creates `path` with `data`, fsyncs the file and its directory.
fn write_durably(path: &Path, data: &[u8]) {
    let mut f = File::create(path).unwrap();
    f.write_all(data).unwrap();
    f.sync_all().unwrap();
    drop(f);
    fsync_dir(path.parent().unwrap());
}

fn errno(e: &std::io::Error) -> Option<Errno> {
    Errno::from_io_error(e)
}

fn is_mounted(path: &Path) -> bool {
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
    let needle = format!(" {} ", path.display());
    mounts.lines().any(|l| l.contains(&needle))
}

#[test]
fn unsynced_writes_vanish_after_a_cut_and_fsynced_ones_stay() {
    let fs = mount();
    let path = fs.mountpoint().join("a");
    write_durably(&path, b"version 1");
    let mut f = OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all(b"VERSION 2 is longer").unwrap();
    drop(f);
    assert_eq!(
        fs::read(&path).unwrap(),
        b"VERSION 2 is longer",
        "reads see writes"
    );

    let report = fs.cut(Tear::None).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"version 1");
    assert_eq!(report.files_reverted, 1);
    assert!(!report.lazy_unmount);

    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(b" + synced tail").unwrap();
    f.sync_all().unwrap();
    f.write_all(b" + lost tail").unwrap();
    drop(f);
    fs.cut(Tear::None).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"version 1 + synced tail");
}

#[test]
fn fdatasync_makes_data_durable_and_is_counted_apart() {
    let fs = mount();
    let path = fs.mountpoint().join("a");
    write_durably(&path, b"");
    let before = fs.counters();
    let mut f = OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all(&[7u8; 10_000]).unwrap();
    f.sync_data().unwrap();
    drop(f);
    let delta = fs.counters().since(&before);
    assert_eq!((delta.fdatasyncs, delta.fsyncs), (1, 0));
    assert_eq!(delta.bytes_written, 10_000);
    assert_eq!(delta.bytes_made_durable, 10_000);
    fs.cut(Tear::None).unwrap();
    assert_eq!(fs::read(&path).unwrap(), vec![7u8; 10_000]);
}

#[test]
fn truncate_and_extend_become_durable_only_with_an_fsync() {
    let fs = mount();
    let path = fs.mountpoint().join("a");
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    write_durably(&path, &data);

    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(3000)
        .unwrap();
    assert_eq!(fs::metadata(&path).unwrap().len(), 3000);
    fs.cut(Tear::None).unwrap();
    assert_eq!(
        fs::read(&path).unwrap(),
        data,
        "an un-synced truncate is undone"
    );

    let f = File::options().write(true).open(&path).unwrap();
    f.set_len(3000).unwrap();
    f.sync_all().unwrap();
    f.set_len(20_000).unwrap();
    drop(f);
    fs.cut(Tear::None).unwrap();
    assert_eq!(
        fs::read(&path).unwrap(),
        &data[..3000],
        "synced truncate kept, extend undone"
    );

    let f = File::options().write(true).open(&path).unwrap();
    f.set_len(20_000).unwrap();
    f.sync_all().unwrap();
    drop(f);
    fs.cut(Tear::None).unwrap();
    let now = fs::read(&path).unwrap();
    assert_eq!(now.len(), 20_000);
    assert_eq!(&now[..3000], &data[..3000]);
    assert!(
        now[3000..].iter().all(|b| *b == 0),
        "the extension reads as zeros"
    );
}

#[test]
fn a_new_file_needs_its_directory_fsynced_to_survive() {
    let fs = mount();
    let dir = fs.mountpoint();
    fs::create_dir(dir.join("kept")).unwrap();
    fsync_dir(dir);

    let orphan = dir.join("fsynced-but-not-named");
    let mut f = File::create(&orphan).unwrap();
    f.write_all(b"data").unwrap();
    f.sync_all().unwrap();
    drop(f);
    let named = dir.join("kept/fsynced-and-named");
    write_durably(&named, b"data");

    let report = fs.cut(Tear::None).unwrap();
    assert!(
        !orphan.exists(),
        "LazyFS semantics: no synced entry, no file"
    );
    assert_eq!(fs::read(&named).unwrap(), b"data");
    assert_eq!(report.nodes_dropped, 1);

    fs::create_dir(dir.join("sub")).unwrap();
    write_durably(&dir.join("sub/inner"), b"x");
    fs.cut(Tear::None).unwrap();
    assert!(
        !dir.join("sub").exists(),
        "a synced entry inside a directory whose own entry is not synced is gone"
    );
}

/// Renames `from` to `to` inside the mount, optionally fsyncing directories, cuts, and returns
/// which of the two names exist afterwards.
fn rename_then_cut(fs: &MountedFs, from: &str, to: &str, sync: &[&str]) -> (bool, bool) {
    let root = fs.mountpoint();
    fs::rename(root.join(from), root.join(to)).unwrap();
    for dir in sync {
        fsync_dir(&root.join(dir));
    }
    fs.cut(Tear::None).unwrap();
    (root.join(from).exists(), root.join(to).exists())
}

#[test]
fn a_rename_is_atomic_and_durable_only_with_a_directory_fsync() {
    let fs = mount();
    let root = fs.mountpoint().to_owned();
    write_durably(&root.join("old"), b"content");

    assert_eq!(rename_then_cut(&fs, "old", "new", &[]), (true, false));
    assert_eq!(rename_then_cut(&fs, "old", "new", &["."]), (false, true));
    assert_eq!(fs::read(root.join("new")).unwrap(), b"content");

    for sub in ["a", "b"] {
        fs::create_dir(root.join(sub)).unwrap();
        fsync_dir(&root.join(sub));
    }
    fsync_dir(&root);
    fs::rename(root.join("new"), root.join("a/f")).unwrap();
    fsync_dir(&root);
    fsync_dir(&root.join("a"));
    for synced in [None, Some("a"), Some("b")] {
        let sync: Vec<&str> = synced.into_iter().collect();
        let (old, new) = rename_then_cut(&fs, "a/f", "b/f", &sync);
        assert!(
            old != new,
            "old or new name, never both or neither ({synced:?})"
        );
        assert_eq!(
            new,
            synced.is_some(),
            "either directory's fsync commits it ({synced:?})"
        );
        if new {
            fs::rename(root.join("b/f"), root.join("a/f")).unwrap();
            fsync_dir(&root.join("a"));
        }
    }
}

#[test]
fn replacing_a_file_by_rename_keeps_old_or_new_content() {
    let fs = mount();
    let root = fs.mountpoint().to_owned();
    write_durably(&root.join("config"), b"old");
    let mut tmp = File::create(root.join("config.tmp")).unwrap();
    tmp.write_all(b"new").unwrap();
    tmp.sync_all().unwrap();
    drop(tmp);
    fs::rename(root.join("config.tmp"), root.join("config")).unwrap();
    fs.cut(Tear::None).unwrap();
    assert_eq!(fs::read(root.join("config")).unwrap(), b"old");
    assert!(!root.join("config.tmp").exists());

    let mut tmp = File::create(root.join("config.tmp")).unwrap();
    tmp.write_all(b"new").unwrap();
    tmp.sync_all().unwrap();
    drop(tmp);
    fs::rename(root.join("config.tmp"), root.join("config")).unwrap();
    fsync_dir(&root);
    fs.cut(Tear::None).unwrap();
    assert_eq!(fs::read(root.join("config")).unwrap(), b"new");
}

#[test]
fn unlink_and_rmdir_are_undone_without_a_directory_fsync() {
    let fs = mount();
    let root = fs.mountpoint().to_owned();
    write_durably(&root.join("f"), b"keep me");
    fs::create_dir(root.join("d")).unwrap();
    fsync_dir(&root);

    fs::remove_file(root.join("f")).unwrap();
    fs::remove_dir(root.join("d")).unwrap();
    fs.cut(Tear::None).unwrap();
    assert_eq!(fs::read(root.join("f")).unwrap(), b"keep me");
    assert!(root.join("d").is_dir());

    fs::remove_file(root.join("f")).unwrap();
    fs::remove_dir(root.join("d")).unwrap();
    fsync_dir(&root);
    fs.cut(Tear::None).unwrap();
    assert!(!root.join("f").exists() && !root.join("d").exists());
}

#[test]
fn a_hard_link_and_a_symlink_follow_the_directory_rules() {
    let fs = mount();
    let root = fs.mountpoint().to_owned();
    write_durably(&root.join("f"), b"x");
    fs::hard_link(root.join("f"), root.join("g")).unwrap();
    std::os::unix::fs::symlink("f", root.join("s")).unwrap();
    assert_eq!(fs::metadata(root.join("f")).unwrap().len(), 1);
    assert_eq!(fs::read(root.join("s")).unwrap(), b"x");
    fs.cut(Tear::None).unwrap();
    assert!(!root.join("g").exists() && !root.join("s").exists());
    fs::hard_link(root.join("f"), root.join("g")).unwrap();
    std::os::unix::fs::symlink("f", root.join("s")).unwrap();
    fsync_dir(&root);
    fs.cut(Tear::None).unwrap();
    assert_eq!(fs::read(root.join("g")).unwrap(), b"x");
    assert_eq!(fs::read_link(root.join("s")).unwrap(), Path::new("f"));
}

#[test]
fn a_torn_last_write_keeps_exactly_k_whole_blocks() {
    let fs = mount();
    let path = fs.mountpoint().join("a");
    write_durably(&path, b"");
    let block = powercut::BLOCK_SIZE as usize;
    let write_two = |f: &File| {
        f.write_all_at(&vec![1u8; 2 * block], 0).unwrap();
        f.write_all_at(&vec![2u8; 5 * block], 2 * block as u64)
            .unwrap();
    };

    let f = File::options().write(true).open(&path).unwrap();
    write_two(&f);
    drop(f);
    let report = fs.cut(Tear::Blocks(3)).unwrap();
    let torn = &report.torn_writes;
    assert_eq!(torn.len(), 1);
    assert_eq!((torn[0].blocks_kept, torn[0].blocks_total), (3, 5));
    assert_eq!(torn[0].path.as_deref(), Some(Path::new("a")));
    let now = fs::read(&path).unwrap();
    assert_eq!(
        now.len(),
        5 * block,
        "the first write is lost, 3 blocks of the last kept"
    );
    assert!(now[..2 * block].iter().all(|b| *b == 0));
    assert!(now[2 * block..].iter().all(|b| *b == 2));

    // Random tears: what is on disk always matches the k the report gives.
    for _ in 0..5 {
        let f = File::options().write(true).open(&path).unwrap();
        f.set_len(0).unwrap();
        f.sync_all().unwrap();
        write_two(&f);
        drop(f);
        let report = fs.cut(Tear::Random).unwrap();
        let kept = report.torn_writes[0].blocks_kept as usize;
        let now = fs::read(&path).unwrap();
        let expected_len = if kept == 0 { 0 } else { (2 + kept) * block };
        assert_eq!(now.len(), expected_len, "k = {kept}");
        assert!(now.iter().skip(2 * block).all(|b| *b == 2));
    }
}

#[test]
fn fsyncs_take_the_configured_latency_and_are_counted() {
    let fs = mount_with(MountOptions {
        fsync_latency: Duration::from_millis(5),
        write_bandwidth: Some(10_000_000),
        ..MountOptions::default()
    });
    let path = fs.mountpoint().join("a");
    let mut f = File::create(&path).unwrap();
    let before = fs.counters();
    let started = Instant::now();
    for _ in 0..20 {
        f.write_all(b"x").unwrap();
        f.sync_all().unwrap();
    }
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "20 fsyncs at 5 ms took {:?}",
        started.elapsed()
    );
    fsync_dir(fs.mountpoint());
    let delta = fs.counters().since(&before);
    assert_eq!((delta.fsyncs, delta.fsyncdirs, delta.writes), (20, 1, 20));
    assert_eq!(delta.bytes_made_durable, (1..=20).sum::<u64>());

    // 1 MB at 10 MB/s: at least 100 ms more.
    f.write_all(&vec![0u8; 1_000_000]).unwrap();
    let started = Instant::now();
    f.sync_all().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(105));
    assert_eq!(fs.counters().since(&before).fsyncs, 21);
}

#[test]
fn writes_beyond_the_capacity_fail_with_enospc() {
    let fs = mount_with(MountOptions {
        capacity: Some(64 * 1024),
        ..MountOptions::default()
    });
    let path = fs.mountpoint().join("a");
    let mut f = File::create(&path).unwrap();
    f.write_all(&[1u8; 32 * 1024]).unwrap();
    let err = f.write_all(&[2u8; 64 * 1024]).unwrap_err();
    assert_eq!(errno(&err), Some(Errno::NOSPC), "{err}");
    assert!(fs.used_bytes() <= 64 * 1024);

    fs.inject(Fault::Capacity { bytes: 1 << 20 });
    f.write_all(&[2u8; 64 * 1024]).unwrap();
    fs.inject(Fault::Capacity { bytes: 4096 });
    let err = f.write_all(b"more").unwrap_err();
    assert_eq!(errno(&err), Some(Errno::NOSPC));
}

#[test]
fn injected_eio_reaches_the_writer_and_a_failed_fsync_loses_its_data() {
    let fs = mount();
    let root = fs.mountpoint().to_owned();
    fs::create_dir(root.join("photos")).unwrap();
    fsync_dir(&root);
    write_durably(&root.join("photos/p.jpg"), b"");
    write_durably(&root.join("ledger"), b"");

    fs.inject(Fault::WriteEio {
        path_contains: "photos/".into(),
    });
    let err = fs::write(root.join("photos/p.jpg"), b"jpeg").unwrap_err();
    assert_eq!(errno(&err), Some(Errno::IO), "{err}");
    fs::write(root.join("ledger"), b"other paths still work").unwrap();
    fs.clear_faults();
    fs::write(root.join("photos/p.jpg"), b"jpeg").unwrap();

    let mut f = OpenOptions::new()
        .write(true)
        .open(root.join("ledger"))
        .unwrap();
    f.write_all(b"acknowledged?").unwrap();
    fs.inject(Fault::FsyncEio { count: 1 });
    let err = f.sync_all().unwrap_err();
    assert_eq!(errno(&err), Some(Errno::IO), "{err}");
    f.sync_all()
        .expect("the next fsync succeeds (like Linux after reporting the error)");
    let mut seen = String::new();
    File::open(root.join("ledger"))
        .unwrap()
        .read_to_string(&mut seen)
        .unwrap();
    assert!(seen.starts_with("acknowledged?"), "the live view keeps it");
    drop(f);
    assert_eq!(fs.counters().failed_syncs, 1);
    fs.cut(Tear::None).unwrap();
    let after = fs::read(root.join("ledger")).unwrap();
    assert!(
        !after.starts_with(b"acknowledged?"),
        "data of a failed fsync must not come back as synced: {after:?}"
    );

    fs.inject(Fault::FsyncEioOn {
        path_contains: "ledger".into(),
    });
    let f = OpenOptions::new()
        .write(true)
        .open(root.join("ledger"))
        .unwrap();
    assert_eq!(errno(&f.sync_data().unwrap_err()), Some(Errno::IO));
    fs.inject(Fault::FsyncDirEio { count: 1 });
    assert_eq!(
        errno(&File::open(&root).unwrap().sync_all().unwrap_err()),
        Some(Errno::IO)
    );
}

#[test]
fn the_page_cache_does_not_survive_a_cut() {
    let fs = mount();
    let path = fs.mountpoint().join("a");
    write_durably(&path, &[1u8; 100_000]);
    let mut f = File::options().read(true).write(true).open(&path).unwrap();
    f.write_all(&[9u8; 100_000]).unwrap();
    f.seek(SeekFrom::Start(0)).unwrap();
    let mut cached = vec![0u8; 100_000];
    f.read_exact(&mut cached).unwrap();
    assert!(cached.iter().all(|b| *b == 9));
    drop(f);
    fs.cut(Tear::None).unwrap();
    assert!(fs::read(&path).unwrap().iter().all(|b| *b == 1));
}

#[test]
fn a_busy_mount_is_detached_lazily_and_its_holder_gets_eio() {
    let fs = mount();
    let path = fs.mountpoint().join("a");
    write_durably(&path, b"x");
    let mut held = File::options().read(true).write(true).open(&path).unwrap();
    let report = fs.cut(Tear::None).unwrap();
    assert!(report.lazy_unmount);
    let err = held.write_all(b"after the cut").unwrap_err();
    assert_eq!(errno(&err), Some(Errno::IO), "{err}");
    drop(held);
    assert_eq!(fs::read(&path).unwrap(), b"x");
}

#[test]
fn dropping_the_handle_unmounts_even_when_a_test_panics() {
    let fs = mount();
    let mountpoint = fs.mountpoint().to_owned();
    assert!(is_mounted(&mountpoint));
    let panicked = std::panic::catch_unwind(move || {
        let _fs = fs;
        panic!("a failing test");
    });
    assert!(panicked.is_err());
    assert!(!is_mounted(&mountpoint));
    assert!(!mountpoint.exists(), "the temporary mount point is removed");

    let dir = tempfile::tempdir().unwrap();
    let fs = PowerCutFs::mount(dir.path(), MountOptions::default()).unwrap();
    assert!(!fs.unmount().unwrap(), "not busy, so not lazy");
    assert!(!is_mounted(dir.path()));
    assert!(fs.cut(Tear::None).is_err(), "no cut after an unmount");
}

//! `powercut mount DIR`: a card in the foreground until SIGINT/SIGTERM, driven through a
//! control socket (see `powercut::control`). Prints one line with the mount point and socket
//! path when ready, and the counters when it stops.

use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use powercut::{PowerCutFs, Tear};
use tokio::signal::unix::{SignalKind, signal};

use super::{CardArgs, summary};

/// Arguments of `powercut mount`.
#[derive(Debug, Args)]
pub struct MountArgs {
    /// Directory to mount on (must exist)
    dir: PathBuf,
    #[command(flatten)]
    card: CardArgs,
    /// How `cut --tear` (without a block count) tears: `random`, `none` or a block count
    #[arg(long, default_value = "random", value_parser = parse_tear)]
    tear: Tear,
    /// Control socket path [default: DIR.powercut.sock, beside DIR]
    #[arg(long, value_name = "PATH")]
    control: Option<PathBuf>,
}

fn parse_tear(text: &str) -> Result<Tear, String> {
    match text {
        "random" => Ok(Tear::Random),
        "none" => Ok(Tear::None),
        k => k
            .parse()
            .map(Tear::Blocks)
            .map_err(|_| format!("expected random, none or a block count, got {k:?}")),
    }
}

/// Runs the subcommand until SIGINT or SIGTERM.
pub async fn run(args: MountArgs) -> anyhow::Result<()> {
    let mut options = args.card.options(0.0)?;
    options.tear = args.tear;
    let socket = args.control.clone().unwrap_or_else(|| {
        let mut name = args.dir.as_os_str().to_owned();
        name.push(".powercut.sock");
        PathBuf::from(name)
    });
    if std::fs::symlink_metadata(&socket).is_ok_and(|m| m.file_type().is_socket()) {
        std::fs::remove_file(&socket)
            .with_context(|| format!("cannot remove the old socket {}", socket.display()))?;
    }
    let mut sigterm = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut sigint = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;

    let fs = Arc::new(PowerCutFs::mount(&args.dir, options)?);
    let listener = UnixListener::bind(&socket)
        .with_context(|| format!("cannot listen on the control socket {}", socket.display()))?;
    let server_fs = Arc::clone(&fs);
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || powercut::control::serve(server_fs, listener))
        .context("cannot start the control thread")?;
    println!(
        "powercut: mounted {} control socket {}",
        fs.mountpoint().display(),
        socket.display()
    );
    std::io::stdout()
        .flush()
        .context("cannot write to stdout")?;

    tokio::select! {
        _ = sigterm.recv() => {}
        _ = sigint.recv() => {}
    }
    let _ = std::fs::remove_file(&socket);
    let counters = fs.counters();
    let lazy = fs.unmount()?;
    eprintln!(
        "powercut: unmounted {}{}; {}",
        fs.mountpoint().display(),
        if lazy { " (lazily: it was busy)" } else { "" },
        summary(&counters)
    );
    Ok(())
}

//! `powercut`: runs a command on an emulated SD card that loses un-synced writes (`sdcard`),
//! mounts one in the foreground with a control socket for shell scripts (`mount`), sends
//! control commands (`ctl`), and runs the power-cut harness against a built hub (`run`). One
//! exit-code policy lives here: `sdcard` exits with its command's code (128+N if killed by
//! signal N, 126/127 if it cannot be run, 125 if powercut itself failed); `mount` and `ctl`
//! exit 0, or 1 on error; `run` exits 0 when nothing acknowledged was lost and the negative
//! control found a loss, 1 otherwise, 125 if the harness itself failed.

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A FUSE filesystem for tests that loses every write not made durable when the power is cut.
#[derive(Debug, Parser)]
#[command(name = "powercut", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run COMMAND on a fresh emulated SD card (every `{}` in its arguments becomes the mount
    /// point), then unmount and exit with the command's exit code.
    Sdcard(cli::sdcard::SdcardArgs),
    /// Mount a power-cut filesystem on DIR in the foreground until SIGINT/SIGTERM; cut the
    /// power and inject faults through its control socket.
    Mount(cli::mount::MountArgs),
    /// Send one command to the control socket of `powercut mount` and print the reply.
    Ctl(cli::ctl::CtlArgs),
    /// Run the hub's workflows on a card and cut the power under them N times; check that
    /// nothing acknowledged was lost, then run the negative control.
    Run(cli::run::RunArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_log = match cli.command {
        Command::Mount(_) => "powercut=info,fuser=warn",
        _ => "powercut=warn,fuser=warn",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log)),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("powercut: error: cannot start the runtime: {e}");
            return ExitCode::from(cli::POWERCUT_FAILED);
        }
    };
    match cli.command {
        Command::Sdcard(args) => runtime.block_on(cli::sdcard::run(args)),
        Command::Mount(args) => cli::exit(runtime.block_on(cli::mount::run(args))),
        Command::Ctl(args) => cli::ctl::run(&args),
        Command::Run(args) => cli::run::run(args),
    }
}

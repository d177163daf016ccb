//! `powercut ctl SOCKET COMMAND...`: sends one control command and prints the reply; exits 1
//! if the reply is an error or the socket cannot be reached.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

/// Arguments of `powercut ctl`.
#[derive(Debug, Args)]
pub struct CtlArgs {
    /// The control socket printed by `powercut mount`
    socket: PathBuf,
    /// The command, e.g. `cut --tear`, `fail-fsync 3`, `counters`
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// Runs the subcommand.
pub fn run(args: &CtlArgs) -> ExitCode {
    match powercut::control::send(&args.socket, &args.command.join(" ")) {
        Ok(reply) => {
            println!("{reply}");
            if reply.starts_with("error:") {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!(
                "powercut: error: cannot reach the control socket {}: {e} (is `powercut mount` running?)",
                args.socket.display()
            );
            ExitCode::FAILURE
        }
    }
}

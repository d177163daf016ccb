//! Runs the vision benchmark from a checkout, the way the hub binary will (hidden subcommand for
//! the tract child included):
//!
//! ```sh
//! deploy/fetch-onnxruntime.sh
//! cargo run --release -p hub-vision --example vision_bench -- --python VENV/bin/python
//! cargo run --release -p hub-vision --example vision_bench -- --python VENV/bin/python --json
//! ```
//!
//! The Python interpreter must have `hub_vision::bench::PY_PACKAGES` installed (this example
//! installs nothing; `hub bench vision` creates the venv itself); without `--python` only the
//! hub's side is measured. With `__vision-tract-bench ...` as first argument it is the tract
//! child process.

use std::path::PathBuf;
use std::process::ExitCode;

use hub_vision::{TractChildCommand, VisionBenchOptions, run_tract_infer_child, run_vision_bench};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("__vision-tract-bench") {
        return match run_tract_infer_child(&args[1..]) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("tract child: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut opts = VisionBenchOptions::new(
        crate_dir.join("../../models/efficientnet-lite0.toml"),
        crate_dir.join("testdata/images"),
    );
    if let Some(reps) = args
        .iter()
        .position(|a| a == "--reps")
        .and_then(|i| args.get(i + 1))
    {
        opts.reps = reps.parse().unwrap_or(opts.reps);
    }
    opts.python = args
        .iter()
        .position(|a| a == "--python")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    opts.tract_child = std::env::current_exe()
        .ok()
        .map(|program| TractChildCommand {
            program,
            args: vec!["__vision-tract-bench".into()],
        });
    match run_vision_bench(&opts) {
        Ok(report) => {
            if args.iter().any(|a| a == "--json") {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else {
                print!("{report}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vision bench: {e}");
            ExitCode::FAILURE
        }
    }
}

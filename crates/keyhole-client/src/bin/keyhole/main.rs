//! `keyhole`: the owner's command line.
// Doc comments below are the command-line help text, where backticks would show.
#![allow(clippy::doc_markdown)]

mod demo;

use clap::{Parser, Subcommand};

/// Keyhole: end-to-end encrypted home video security, from the owner's side.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole system on this machine and show it working: the embedded server (SQLite
    /// and a folder, HTTPS with a self-signed certificate) in a temporary folder, an account,
    /// a paired simulated camera that records sealed clips and events, verification and export
    /// on the owner's device, a search of everything the server stored for the video's
    /// plaintext, and a tampered clip being caught.
    Demo {
        /// Keep the server's data in this folder instead of a temporary one.
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("keyhole: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Demo { dir } => demo::run(dir).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyhole: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

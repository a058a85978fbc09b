//! `keyhole-camera`: pair with an owner's account, then capture, seal and upload.
#![forbid(unsafe_code)]

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use keyhole_camera::config::Config;
use keyhole_camera::{Agent, AgentSettings};
use zeroize::Zeroizing;

/// Keyhole camera agent: seals video so only the owner's devices can open it.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Configuration file (TOML); without one, a synthetic wired camera with state in
    /// ./keyhole-camera-state.
    #[arg(long, short, env = "KEYHOLE_CAMERA_CONFIG")]
    config: Option<PathBuf>,
    /// Overrides the configuration's `state_dir`.
    #[arg(long, env = "KEYHOLE_CAMERA_STATE_DIR")]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Pairs with an owner's account from a pairing code (`-` reads it from stdin, keeping it
    /// out of the process list and shell history).
    Pair {
        /// The pairing code shown by `keyhole`, starting with KH1-.
        code: String,
    },
    /// Captures, seals and uploads until stopped (Ctrl-C or SIGTERM).
    Run,
    /// Shows the paired account's code, the spool, the last upload and any alerts: from the
    /// running camera's control endpoint, or from the state folder when it is not running.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Factory reset: erases the camera's keys, verified record, chain and spool, so it can be
    /// paired again (for example after a transfer). Sealed clips not yet uploaded are lost.
    Reset {
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("keyhole-camera: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(dir) = cli.state_dir {
        config.state_dir = dir;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("keyhole-camera: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyhole-camera: {e}");
            ExitCode::FAILURE
        }
    }
}

fn settings(config: &Config) -> AgentSettings {
    AgentSettings {
        suite: config.suite(),
        spool_bytes: config.spool_mb.saturating_mul(1 << 20),
        silent_after_s: config.silent_after_s(),
    }
}

async fn command(command: Command, config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let dir = config.state_dir.clone();
    match command {
        Command::Pair { code } => {
            let code = if code == "-" {
                let mut text = Zeroizing::new(String::new());
                std::io::stdin().read_to_string(&mut text)?;
                text
            } else {
                Zeroizing::new(code)
            };
            let agent =
                Agent::pair(code.trim(), &dir, settings(&config), &mut rand_core::OsRng).await?;
            let status = agent.status();
            println!("Paired camera {}.", status.camera_id);
            println!(
                "Account code: {}\nCompare it with the code the owner's app shows; if they differ, run `keyhole-camera reset`.",
                status.account_code
            );
            Ok(())
        }
        Command::Run => {
            let agent = Agent::open(&dir, settings(&config))?;
            let status = agent.status().clone();
            let control = tokio::net::TcpListener::bind(config.control)
                .await
                .map_err(|e| {
                    format!(
                        "the control endpoint could not listen on {}: {e}",
                        config.control
                    )
                })?;
            let address = control.local_addr()?;
            eprintln!(
                "keyhole-camera: camera {} of account {}, sealing with {}",
                status.camera_id, status.account_code, status.suite
            );
            // On standard output, for whoever started the camera on port 0 to read.
            println!("keyhole-camera control on http://{address}");
            keyhole_camera::run::run(config, agent, control, stop_signal()).await?;
            eprintln!("keyhole-camera: stopped");
            Ok(())
        }
        Command::Status { json } => {
            // This folder's camera first: whatever answers on the control address counts only
            // if it is the same camera (another one may run there).
            let here = serde_json::to_value(Agent::open(&dir, settings(&config))?.status())?;
            let url = format!("http://{}/status", config.control);
            let live: Option<serde_json::Value> = match reqwest::get(&url).await {
                Ok(resp) if resp.status().is_success() => resp.json().await.ok(),
                _ => None,
            };
            let value = match live {
                Some(v) if v["camera_id"] == here["camera_id"] => v,
                Some(other) => {
                    eprintln!(
                        "keyhole-camera: another camera ({}) answers on {}; this folder's camera \
                         is not running there. Its state as stored:",
                        other["camera_id"].as_str().unwrap_or("unknown"),
                        config.control
                    );
                    here
                }
                None => here,
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                print_status(&value);
            }
            Ok(())
        }
        Command::Reset { yes } => {
            if !dir.exists() {
                println!("Nothing to reset in {}.", dir.display());
                return Ok(());
            }
            if !yes {
                eprint!(
                    "Erase this camera's keys and unsent clips in {}? Type 'reset' to confirm: ",
                    dir.display()
                );
                let mut answer = String::new();
                std::io::stdin().read_line(&mut answer)?;
                if answer.trim() != "reset" {
                    return Err("not confirmed; nothing was erased".into());
                }
            }
            std::fs::remove_dir_all(&dir)?;
            println!("Camera reset: {} erased.", dir.display());
            Ok(())
        }
    }
}

fn print_status(v: &serde_json::Value) {
    let s = |k: &str| {
        v[k].as_str()
            .map_or_else(|| v[k].to_string(), str::to_owned)
    };
    println!("camera        {}", s("camera_id"));
    println!("account code  {}", s("account_code"));
    println!(
        "server        {} ({})",
        s("server"),
        if v["online"] == true {
            "online"
        } else {
            "not reached"
        }
    );
    println!("suite         {}   epoch {}", s("suite"), s("epoch"));
    println!(
        "last upload   {}",
        v["last_upload"].as_str().unwrap_or("none")
    );
    println!(
        "spool         {} object(s), {} bytes; {} sealed, {} dropped, {} refused",
        s("spool_objects"),
        s("spool_bytes"),
        s("sealed"),
        s("dropped"),
        s("rejected")
    );
    if let Some(since) = v["source_lost_since"].as_str() {
        println!(
            "VIDEO SOURCE  lost since {since}: {}; reconnecting",
            v["source_problem"].as_str().unwrap_or("no reason given")
        );
    }
    if v["credential_refused"] == true {
        println!(
            "REMOVED       the server no longer accepts this camera: reset it \
             (`keyhole-camera reset`) and pair it again"
        );
    }
    if let Some(alerts) = v["alerts"].as_array()
        && !alerts.is_empty()
    {
        println!("ALERTS:");
        for a in alerts {
            println!("  - {}", a.as_str().unwrap_or_default());
        }
    }
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    tokio::signal::ctrl_c().await.ok();
}

//! Keyhole's performance report. `cargo run --release -p keyhole-bench` runs every section and
//! prints the tables of `docs/PERFORMANCE.md`; each figure is a ratio to a baseline measured in
//! the same run. Name sections to run only those; `--quick` shrinks every size to check that
//! the bench works (its figures are not for the table).
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "figures computed for display"
)]

mod arm;
mod battery;
mod history;
mod ingest;
mod listing;
mod live;
mod playback;
mod press;
mod seal;
mod sound;
mod stats;
mod talk;
mod wire;
mod world;

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Section {
    /// Sealing and opening a clip against the raw AEAD.
    Seal,
    /// A battery camera's instructions and bytes per clip against an unencrypted upload.
    Battery,
    /// Many cameras uploading at once against plain file writes and an S3 server.
    Ingest,
    /// Time to the first bytes of a clip and to a seek against an unencrypted download.
    Playback,
    /// Latency through the live relay, sealed against plain.
    Live,
    /// Listing one camera's clips among a million.
    Listing,
    /// A device syncing its index of a camera's history, against downloading everything.
    History,
    /// A doorbell press to the event opened on the owner's device, against polling.
    Press,
    /// A clip's CPU time and bytes with sound, against its pictures alone.
    Sound,
    /// Talk-back latency from the owner's device to the camera's speaker, against the relay.
    Talk,
    /// Instructions per byte on ARM under qemu (run only when named: it cross-builds).
    Arm,
}

impl Section {
    fn title(self) -> &'static str {
        match self {
            Self::Seal => "Sealing and opening a clip",
            Self::Battery => "Battery camera: instructions and bytes per clip",
            Self::Ingest => "Server ingest",
            Self::Playback => "Playback",
            Self::Live => "Live view",
            Self::Listing => "Listing among 1,000,000 clips",
            Self::History => "Browsing a camera's history",
            Self::Press => "From a doorbell press to the owner's device",
            Self::Sound => "Sound: what it costs a camera",
            Self::Talk => "Talking back through a camera",
            Self::Arm => "On ARM: instructions per byte",
        }
    }
}

/// Measures Keyhole against baselines run in the same process and prints the tables.
#[derive(Debug, Parser)]
#[command(name = "keyhole-bench")]
struct Args {
    /// Sections to run, in this order; all but `arm` when none is named.
    #[arg(value_enum)]
    sections: Vec<Section>,
    /// Small sizes and few repetitions: checks that every section runs.
    #[arg(long)]
    quick: bool,
    /// Also write the report to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The history section also records and syncs a year of history (about 45 minutes here).
    #[arg(long)]
    year: bool,
}

async fn section(s: Section, quick: bool, year: bool) -> anyhow::Result<String> {
    match s {
        Section::Seal => tokio::task::spawn_blocking(move || seal::run(quick)).await?,
        Section::Battery => battery::run(quick).await,
        Section::Ingest => ingest::run(quick).await,
        Section::Playback => playback::run(quick).await,
        Section::Live => live::run(quick).await,
        Section::Listing => listing::run(quick).await,
        Section::History => history::run(quick, year).await,
        Section::Press => press::run(quick).await,
        Section::Sound => tokio::task::spawn_blocking(move || sound::run(quick)).await?,
        Section::Talk => talk::run(quick).await,
        Section::Arm => tokio::task::spawn_blocking(move || arm::run(quick)).await?,
    }
}

fn main() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("battery-worker") {
        return battery::worker(&argv[2..]);
    }
    tokio::runtime::Runtime::new()?.block_on(bench(Args::parse()))
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let sections = if args.sections.is_empty() {
        let mut all = Section::value_variants().to_vec();
        all.retain(|s| *s != Section::Arm);
        all
    } else {
        args.sections.clone()
    };
    let mut report = format!(
        "Keyhole performance report{}: {}.\n",
        if args.quick {
            " (--quick: sizes too small for the table)"
        } else {
            ""
        },
        machine()
    );
    for s in sections {
        eprintln!("keyhole-bench: {}…", s.title());
        let started = std::time::Instant::now();
        let body = section(s, args.quick, args.year).await?;
        let text = format!("\n## {}\n\n{body}", s.title());
        print!("{text}");
        report.push_str(&text);
        eprintln!(
            "keyhole-bench: {} done in {:.0} s",
            s.title(),
            started.elapsed().as_secs_f64()
        );
    }
    if let Some(out) = args.out {
        std::fs::write(&out, report)?;
        eprintln!("keyhole-bench: report written to {}", out.display());
    }
    Ok(())
}

/// The processor and core count, for the report's first line.
fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown processor".to_owned());
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    format!("{model}, {cores} cores")
}

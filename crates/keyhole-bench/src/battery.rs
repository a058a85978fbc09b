//! The battery camera's energy proxy: CPU instructions (valgrind's callgrind, deterministic)
//! and bytes on the wire for one 10-second event clip sealed and uploaded over TLS, against
//! uploading the same clip unencrypted over TLS through the same upload code. Each run is a
//! separate camera process (this program's `battery-worker`); a run that only opens the
//! camera's state and seeds aws-lc's random generator is subtracted from the others, leaving
//! the work of one clip.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};
use aws_lc_rs::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
use keyhole_camera::{Agent, AgentSettings};
use keyhole_client::core::ObjectId;
use rand_core::SeedableRng;

use crate::stats::clip_bytes;
use crate::wire::{Proxy, sink};
use crate::world::World;

/// 10 seconds of 1080p at 4 Mbit/s.
const CLIP_BYTES: usize = 5_000_000;
/// What a head adds to an upload request: `keyhole-head: ` and 161 bytes in hexadecimal, CRLF.
const HEAD_HEADER_BYTES: u64 =
    14 + 2 * keyhole_client::core::camera_head::CAMERA_HEAD_LEN as u64 + 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Open the camera's state and its connection settings; nothing else.
    Open,
    /// Open, and draw once from aws-lc's random generator, which seeds itself from CPU jitter
    /// on its first use in a process: what a running camera did long before an event.
    Setup,
    /// Upload the clip as it is, with the agent's upload request.
    Plain,
    /// Seal the clip into the spool only.
    Seal,
    /// Seal the clip into the spool and upload the spool, as the camera does.
    Sealed,
    /// AES-256-GCM and BLAKE3 over the clip's bytes in place, as the envelope lays them out:
    /// the least any seal in this format costs.
    Floor,
    /// Sign and send the camera's head on its own (PROTOCOL.md §8.3), as a battery camera does
    /// daily besides the head each upload carries.
    Head,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Setup => "setup",
            Self::Plain => "plain",
            Self::Seal => "seal",
            Self::Sealed => "sealed",
            Self::Floor => "floor",
            Self::Head => "head",
        }
    }

    fn parse(s: &str) -> anyhow::Result<Self> {
        [
            Self::Open,
            Self::Setup,
            Self::Plain,
            Self::Seal,
            Self::Sealed,
            Self::Floor,
            Self::Head,
        ]
        .into_iter()
        .find(|m| m.name() == s)
        .with_context(|| format!("unknown worker mode {s}"))
    }
}

/// `keyhole-bench battery-worker <mode> <camera state> <clip>`: one camera run.
pub fn worker(args: &[String]) -> anyhow::Result<()> {
    let [mode, state, clip] = args else {
        bail!("usage: keyhole-bench battery-worker <mode> <camera state folder> <clip file>");
    };
    let mode = Mode::parse(mode)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut agent = Agent::open(Path::new(state), AgentSettings::default())?;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        let len = std::fs::metadata(clip)?.len();
        let id = ObjectId::random(&mut rng);
        // Every run but the bare one starts where a running camera is: generator seeded.
        if mode != Mode::Open {
            aws_lc_rs::rand::fill(&mut [0u8; 32])
                .map_err(|_| anyhow::anyhow!("aws-lc's random generator failed"))?;
        }
        match mode {
            Mode::Open | Mode::Setup => {}
            Mode::Plain => {
                let file = tokio::fs::File::open(clip).await?;
                let resp = agent.link().put_object(&id, file, len, 0, None).await?;
                ensure!(resp.status().is_success(), "the upload was refused");
                resp.bytes().await?;
            }
            Mode::Head => agent.send_head().await?,
            Mode::Floor => {
                let mut bytes = std::fs::read(clip)?;
                let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7; 32])?);
                keyhole_workload::raw_aead(&key, &mut bytes, true)?;
            }
            Mode::Seal | Mode::Sealed => {
                let mut file = std::fs::File::open(clip)?;
                agent.seal_clip_from(id, &mut file, len, keyhole_camera::now(), &mut rng)?;
                if mode == Mode::Sealed {
                    ensure!(
                        agent.upload_pending().await? == 1,
                        "the clip was not uploaded"
                    );
                }
            }
        }
        Ok(())
    })
}

struct Run {
    instructions: Option<u64>,
    up: u64,
    down: u64,
    requests: u64,
}

fn valgrind() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("valgrind"))
            .find(|p| p.exists())
    })
}

/// Runs the worker (under callgrind when there is valgrind) and returns its instruction count.
fn run_worker(mode: Mode, state: &Path, clip: &Path, out: &Path) -> anyhow::Result<Option<u64>> {
    let exe = std::env::current_exe()?;
    let counts = out.join(format!("callgrind.{}", mode.name()));
    let mut command = match valgrind() {
        Some(valgrind) => {
            let mut c = Command::new(valgrind);
            c.arg("--tool=callgrind")
                .arg(format!("--callgrind-out-file={}", counts.display()))
                .arg(exe);
            c
        }
        None => Command::new(exe),
    };
    let output = command
        .arg("battery-worker")
        .arg(mode.name())
        .arg(state)
        .arg(clip)
        .output()?;
    ensure!(
        output.status.success(),
        "the {} run failed: {}",
        mode.name(),
        String::from_utf8_lossy(&output.stderr)
    );
    if !counts.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&counts)?;
    let total = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .context("no instruction total in callgrind's output")?;
    Ok(Some(total.trim().parse()?))
}

fn percent_more(more: u64, base: u64, decimals: usize) -> String {
    format!(
        "+{:.decimals$} %",
        (more as f64 - base as f64) / base as f64 * 100.0
    )
}

pub async fn run(quick: bool) -> anyhow::Result<String> {
    let clip_len = if quick { 1_000_000 } else { CLIP_BYTES };
    let mut world = World::start().await?;
    let server: SocketAddr = world
        .server
        .url
        .trim_start_matches("http://")
        .parse()
        .context("the server's address")?;
    let proxy = Proxy::start(server, &world.dir.path().join("proxy")).await?;
    let (agent, _) = world.camera_via(&proxy.url, Some(proxy.pin)).await?;
    drop(agent);
    let state = world.camera_dir(1);
    let clip = world.dir.path().join("clip.mp4");
    std::fs::write(&clip, clip_bytes(clip_len, 6))?;
    let sink = sink().await?;

    let mut runs = Vec::new();
    // The seal-only run goes last: it leaves its clip in the spool.
    for mode in [
        Mode::Open,
        Mode::Setup,
        Mode::Plain,
        Mode::Sealed,
        Mode::Floor,
        Mode::Head,
        Mode::Seal,
    ] {
        proxy.retarget(if matches!(mode, Mode::Sealed | Mode::Head) {
            server
        } else {
            sink
        });
        proxy.counters.take();
        // `KEYHOLE_BENCH_CALLGRIND=<folder>` keeps the profiles for `callgrind_annotate`.
        let out = std::env::var_os("KEYHOLE_BENCH_CALLGRIND")
            .map_or_else(|| world.dir.path().to_owned(), PathBuf::from);
        let (state, clip) = (state.clone(), clip.clone());
        let instructions =
            tokio::task::spawn_blocking(move || run_worker(mode, &state, &clip, &out)).await??;
        let (up, down, requests) = proxy.counters.take();
        runs.push(Run {
            instructions,
            up,
            down,
            requests,
        });
    }
    let [open, setup, plain, sealed, floor, head, seal] = &runs[..] else {
        bail!("seven runs expected");
    };
    let per_clip = |r: &Run| match (r.instructions, setup.instructions) {
        (Some(n), Some(base)) => Some(n.saturating_sub(base)),
        _ => None,
    };
    let show = |n: Option<u64>| n.map_or("valgrind not installed".to_owned(), |n| n.to_string());

    let mut t = String::new();
    writeln!(
        t,
        "One {clip_len}-byte clip (10 seconds of 1080p at 4 Mbit/s), read from a file by a camera \
         process, over HTTPS on loopback: the camera's own client (rustls, pinning the certificate, \
         a new connection and a full handshake in every run, as after a battery camera's wake) \
         to a proxy that ends TLS as the server does. Instructions are the camera process's, \
         counted by callgrind, minus a run that only opens the camera's state and draws once from \
         aws-lc's random generator ({}). Of that run, {} instructions are the generator seeding \
         itself from CPU jitter, which aws-lc does once in a process: the camera agent stays \
         running between events, so this is paid when it starts, not per clip. Bytes are \
         counted on the wire (TLS records included), requests inside the TLS. The unencrypted \
         upload goes on to a sink that takes any object, since the server takes only sealed \
         ones.\n",
        show(setup.instructions),
        show(
            setup
                .instructions
                .zip(open.instructions)
                .map(|(s, o)| s.saturating_sub(o))
        )
    )?;
    writeln!(
        t,
        "| per clip | instructions | bytes sent | bytes received | requests |"
    )?;
    writeln!(t, "|---|---:|---:|---:|---:|")?;
    for (what, r) in [
        (
            "upload unencrypted over TLS, the agent's upload request (baseline)",
            plain,
        ),
        (
            "AES-256-GCM and BLAKE3 over the clip in memory, in place (the least any seal in \
             this format costs)",
            floor,
        ),
        ("seal into the spool only", seal),
        (
            "seal into the spool and upload it over TLS (what the camera does)",
            sealed,
        ),
    ] {
        writeln!(
            t,
            "| {what} | {} | {} | {} | {} |",
            show(per_clip(r)),
            r.up,
            r.down,
            r.requests
        )?;
    }
    if let (Some(p), Some(s), Some(f), Some(only)) = (
        per_clip(plain),
        per_clip(sealed),
        per_clip(floor),
        per_clip(seal),
    ) {
        writeln!(
            t,
            "| E2EE adds | {} | {} | | {} |",
            percent_more(s, p, 1),
            percent_more(sealed.up, plain.up, 2),
            if sealed.requests == plain.requests {
                "same"
            } else {
                "differs"
            }
        )?;
        writeln!(
            t,
            "| the least E2EE could add: AES-256-GCM and BLAKE3 over the clip | {} | | | |",
            percent_more(p + f, p, 1)
        )?;
        writeln!(
            t,
            "\nSealing into the spool costs {:.2}× its floor, AES-256-GCM and BLAKE3 alone.",
            only as f64 / f as f64
        )?;
    }
    ensure!(
        plain.requests == 1 && sealed.requests == 1 && head.requests == 1,
        "one request per clip, and per head, expected"
    );
    // A battery camera's heads for a day: one on its own, and one in each upload's header.
    let carried = HEAD_HEADER_BYTES;
    writeln!(
        t,
        "\nThe camera's heads (PROTOCOL.md §8.3): every upload above carries one in a request \
         header ({carried} bytes, included in the sealed row), and a battery camera sends one on \
         its own once a day.\n"
    )?;
    writeln!(
        t,
        "| heads | instructions | bytes sent | bytes received | requests |"
    )?;
    writeln!(t, "|---|---:|---:|---:|---:|")?;
    writeln!(
        t,
        "| one head on its own | {} | {} | {} | {} |",
        show(per_clip(head)),
        head.up,
        head.down,
        head.requests
    )?;
    writeln!(
        t,
        "| a battery day with 10 events: one on its own, 10 carried (each carried head is one \
         signature, in the sealed row) | | {} | {} | {} |",
        head.up + 10 * carried,
        head.down,
        head.requests
    )?;
    world.server.stop();
    Ok(t)
}

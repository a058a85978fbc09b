//! Instructions on the ARM boards cameras run on. The workloads of `keyhole-workload` are
//! cross-built in release for aarch64 and armv7 and run under qemu-user with a plugin that
//! counts the guest instructions executed (`qemu/count_instructions.c`, built here with the
//! system C compiler). Each figure is a full run less a dry run that only makes the input,
//! divided by the amount: a count, not a time, so it is the same whatever else the machine is
//! doing. Only run when named: it cross-builds for both targets.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};

/// An ARM target and the CPU qemu emulates for it.
struct Target {
    triple: &'static str,
    qemu: &'static str,
    sysroot: &'static str,
    cpu: &'static str,
    about: &'static str,
}

const TARGETS: [Target; 2] = [
    Target {
        triple: "aarch64-unknown-linux-gnu",
        qemu: "qemu-aarch64",
        sysroot: "/usr/aarch64-linux-gnu",
        cpu: "cortex-a76",
        about: "the Raspberry Pi 5's core: NEON, AES and PMULL instructions",
    },
    Target {
        triple: "armv7-unknown-linux-gnueabihf",
        qemu: "qemu-arm",
        sysroot: "/usr/arm-linux-gnueabihf",
        cpu: "cortex-a7",
        about: "a 32-bit camera SoC's core: NEON, no AES instructions",
    },
];

pub fn run(quick: bool) -> anyhow::Result<String> {
    let bytes: u64 = if quick { 1 << 20 } else { 8 << 20 };
    let seconds: u64 = if quick { 1 } else { 10 };
    let scratch = tempfile::tempdir()?;
    let plugin = build_plugin(scratch.path())?;
    let mut t = String::new();
    writeln!(
        t,
        "Guest instructions counted by a qemu plugin (`keyhole-bench arm`): a clip of {bytes} \
         bytes in 64 KiB chunks sealed and opened, each primitive alone over the same chunks, \
         and {seconds} s of an IP camera's G.711 turned into PCM and encoded as Opus, release \
         builds, one thread.\n"
    )?;
    writeln!(
        t,
        "| target (qemu CPU) | work | instructions per byte | ratio to AEAD + BLAKE3 |"
    )?;
    writeln!(t, "|---|---|---:|---:|")?;
    let mut sound = Vec::new();
    for target in &TARGETS {
        eprintln!(
            "keyhole-bench: building keyhole-workload for {}…",
            target.triple
        );
        let exe = build_workload(target.triple)?;
        let count = |work: &str, amount: u64| -> anyhow::Result<f64> {
            let full = instructions(target, &plugin, &exe, work, amount, false)?;
            let dry = instructions(target, &plugin, &exe, work, amount, true)?;
            ensure!(full > dry, "{work} did nothing on {}", target.triple);
            Ok((full - dry) as f64 / amount as f64)
        };
        let name = format!("{} ({})", target.triple, target.cpu);
        let blake3 = count("blake3", bytes)?;
        writeln!(t, "| {name} | BLAKE3 | {blake3:.2} | |")?;
        for (suite, label) in [("aes", "AES-256-GCM"), ("chacha", "ChaCha20-Poly1305")] {
            let aead = count(&format!("aead-{suite}"), bytes)?;
            let floor = aead + blake3;
            writeln!(t, "| {name} | raw AEAD, {label} | {aead:.2} | |")?;
            for (work, what) in [("seal", "seal"), ("open", "open")] {
                let n = count(&format!("{work}-{suite}"), bytes)?;
                writeln!(
                    t,
                    "| {name} | {what}, {label} | {n:.2} | {:.2} |",
                    n / floor
                )?;
            }
        }
        sound.push((name, target.about, count("g711-opus", seconds)?));
    }
    writeln!(
        t,
        "\nG.711 (8 kHz μ-law, as cheap IP cameras send it) turned into PCM and encoded as Opus \
         at 24 kb/s in 20 ms packets, as the RTSP source does:\n"
    )?;
    writeln!(
        t,
        "| target (qemu CPU) | instructions per second of sound | share of a 1 GHz core at one \
         instruction a cycle |"
    )?;
    writeln!(t, "|---|---:|---:|")?;
    for (name, _, per_second) in &sound {
        writeln!(
            t,
            "| {name} | {:.1} M | {:.1} % |",
            per_second / 1e6,
            per_second / 1e7
        )?;
    }
    writeln!(t)?;
    for target in &TARGETS {
        writeln!(t, "- `{}`: {}.", target.cpu, target.about)?;
    }
    Ok(t)
}

/// Builds the counting plugin into `dir`.
fn build_plugin(dir: &Path) -> anyhow::Result<PathBuf> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("qemu/count_instructions.c");
    let out = dir.join("count_instructions.so");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&out)
        .arg(&source)
        .status()
        .context("running cc to build the qemu plugin")?;
    ensure!(status.success(), "cc could not build {}", source.display());
    Ok(out)
}

/// Cross-builds `keyhole-workload` in release for `triple`; returns its path.
fn build_workload(triple: &str) -> anyhow::Result<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--quiet",
            "--message-format=json-render-diagnostics",
            "-p",
            "keyhole-workload",
            "--target",
            triple,
        ])
        .current_dir(&workspace)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running cargo build")?;
    ensure!(
        out.status.success(),
        "could not build keyhole-workload for {triple} (rustup target add {triple}, and the \
         cross C compiler .cargo/config.toml names)"
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .context("cargo named no keyhole-workload executable")
}

/// The instructions `exe WORK AMOUNT [--dry]` executes under qemu on `target`.
fn instructions(
    target: &Target,
    plugin: &Path,
    exe: &Path,
    work: &str,
    amount: u64,
    dry: bool,
) -> anyhow::Result<u64> {
    let mut command = Command::new(target.qemu);
    command
        .args(["-L", target.sysroot, "-cpu", target.cpu, "-plugin"])
        .arg(plugin)
        .arg(exe)
        .args([work, &amount.to_string()]);
    if dry {
        command.arg("--dry");
    }
    let out = command
        .output()
        .with_context(|| format!("running {} (Debian's qemu-user)", target.qemu))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("{work} on {} failed: {stderr}", target.triple);
    }
    stderr
        .lines()
        .find_map(|line| line.strip_prefix("keyhole-instructions: "))
        .and_then(|n| n.trim().parse().ok())
        .with_context(|| format!("the plugin printed no count: {stderr}"))
}

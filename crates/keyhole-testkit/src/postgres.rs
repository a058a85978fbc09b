//! A throwaway PostgreSQL server: a fresh cluster in a temporary folder, listening on a free
//! loopback port, stopped and removed when dropped. PostgreSQL refuses to run as root, so as
//! root the cluster runs as the `postgres` user.

use std::path::PathBuf;
use std::process::Command;

/// A running PostgreSQL server.
pub struct Postgres {
    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub url: String,
    bin: PathBuf,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

/// The newest installed PostgreSQL's program folder, if any.
fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Runs `program args` (as `postgres` when root, from `/`, which every user may enter);
/// returns its output.
fn run(program: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    cmd.args(args)
        .current_dir("/")
        .output()
        .expect("run a PostgreSQL program")
}

/// [`run`], panicking with the program's output if it fails.
fn must_run(program: &std::path::Path, args: &[&str]) {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Postgres {
    /// Starts a server, or `None` when PostgreSQL is not installed (`.ci/run` installs it, and
    /// tests that need it fail there rather than skip).
    #[must_use]
    pub fn start() -> Option<Self> {
        let Some(bin) = bin_dir() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL is not installed (/usr/lib/postgresql/*/bin)"
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("temporary folder");
        if is_root() {
            let ok = Command::new("chown")
                .args(["postgres"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown the cluster folder to postgres");
        }
        let data = dir.path().join("data");
        let socket = dir.path().to_str().expect("utf-8 path").to_owned();
        let data_arg = data.to_str().expect("utf-8 path").to_owned();
        must_run(
            &bin.join("initdb"),
            &[
                "-D",
                &data_arg,
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = dir.path().join("log");
        must_run(
            &bin.join("pg_ctl"),
            &[
                "-D",
                &data_arg,
                "-o",
                &format!("-h 127.0.0.1 -p {port} -k {socket} -c fsync=off"),
                "-l",
                log.to_str().expect("utf-8 path"),
                "-w",
                "start",
            ],
        );
        Some(Self {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            bin,
            data,
            _dir: dir,
        })
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(data) = self.data.to_str() {
            // Never panic here: a failed stop leaves a server behind, not a failed test.
            let _ = run(
                &self.bin.join("pg_ctl"),
                &["-D", data, "-m", "immediate", "stop"],
            );
        }
    }
}

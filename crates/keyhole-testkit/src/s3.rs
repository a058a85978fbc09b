//! A throwaway S3-compatible server: `s3s-fs` (a real S3 protocol implementation over a folder)
//! on a loopback port it binds itself, with one empty bucket, stopped and removed when dropped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use keyhole_server::config::{S3Config, Secret};

/// The bucket every test server starts with.
pub const BUCKET: &str = "keyhole";

/// A running S3 server.
pub struct S3Server {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    child: Child,
    _dir: tempfile::TempDir,
}

/// `$KEYHOLE_S3S_FS`, else where `.ci/run` installs it, else `s3s-fs` on the `PATH`.
fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("KEYHOLE_S3S_FS") {
        return Some(PathBuf::from(p));
    }
    let installed = PathBuf::from("/var/tmp/keyhole-tools/bin/s3s-fs");
    if installed.exists() {
        return Some(installed);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("s3s-fs"))
            .find(|p| p.exists())
    })
}

impl S3Server {
    /// Starts a server, or `None` when `s3s-fs` is not installed (`.ci/run` installs it, and
    /// tests that need it fail there rather than skip).
    #[must_use]
    pub fn start() -> Option<Self> {
        let Some(program) = binary() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "s3s-fs is not installed (set KEYHOLE_S3S_FS or see .ci/run)"
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("temporary folder");
        // s3s-fs keeps a bucket as a folder of its root.
        std::fs::create_dir(dir.path().join(BUCKET)).expect("bucket folder");
        // Port 0: s3s-fs binds a free port itself and logs where it listens, on standard
        // output, once it does.
        let mut child = Command::new(&program)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(["--access-key", "test", "--secret-key", "testsecret"])
            .arg(dir.path())
            .env("RUST_LOG", "s3s_fs=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
        // Its output is read on a thread of its own, which keeps reading so the server never
        // blocks on a full pipe; the address comes back over a channel, within 20 s or never.
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some((_, url)) = line.split_once("server is running at ") {
                    tx.send(url.trim().to_owned()).ok();
                }
            }
        });
        let mut server = Self {
            endpoint: String::new(),
            child,
            _dir: dir,
        };
        server.endpoint = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .unwrap_or_else(|_| {
                panic!(
                    "{} did not say where it listens within 20 s",
                    program.display()
                )
            });
        Some(server)
    }

    /// The server's `[s3]` settings for the test bucket.
    #[must_use]
    pub fn config(&self) -> S3Config {
        S3Config {
            bucket: BUCKET.to_owned(),
            endpoint: Some(self.endpoint.clone()),
            region: "us-east-1".to_owned(),
            access_key_id: Some("test".to_owned()),
            secret_access_key: Some(Secret::new("testsecret".to_owned())),
            allow_http: true,
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        // Never panic here: a failed stop leaves a server behind, not a failed test.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! A throwaway S3-compatible server: `s3s-fs` (a real S3 protocol implementation over a folder)
//! on a free loopback port, with one empty bucket, stopped and removed when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(&program)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", "test", "--secret-key", "testsecret"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
        let server = Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
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

//! The workspace's binaries as processes: the server on loopback, and the camera agent with
//! its control endpoint, each killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The path of the workspace binary `name`, built first (`cargo build --bin`, a no-op when it is
/// current) with the profile of the running test or program, so a test in one package can run
/// another package's binary.
///
/// # Panics
/// If the build fails.
#[must_use]
pub fn binary(name: &str) -> PathBuf {
    static BUILDING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = BUILDING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Tests run from <target>/<profile>/deps/, workspace binaries (the bench) from
    // <target>/<profile>/.
    let exe = std::env::current_exe().expect("the running program's own path");
    let parent = exe.parent().expect("a program inside a folder");
    let profile_dir = if parent.file_name().is_some_and(|n| n == "deps") {
        parent.parent().expect("<target>/<profile>/deps")
    } else {
        parent
    };
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--quiet", "--bin", name])
        .current_dir(workspace);
    if release {
        build.arg("--release");
    }
    let status = build.status().expect("running cargo build");
    assert!(status.success(), "building {name} failed");
    profile_dir.join(name)
}

/// Asks a process to stop (SIGTERM) and waits for it; whether it exited successfully.
fn terminate(child: &mut Child) -> bool {
    let signalled = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    if !signalled {
        child.kill().ok();
    }
    child.wait().is_ok_and(|s| s.success())
}

/// `keyhole-server` as its own process on the embedded storage, plain HTTP on 127.0.0.1.
pub struct ServerProcess {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    child: Option<Child>,
}

impl ServerProcess {
    /// Starts the server binary on `data_dir` and waits until it listens.
    ///
    /// # Panics
    /// If it does not start.
    #[must_use]
    pub fn spawn(data_dir: &Path) -> Self {
        Self::spawn_on(data_dir, "127.0.0.1:0")
    }

    /// Starts it on `addr` (to bring a stopped server back at the same URL).
    ///
    /// # Panics
    /// If it does not start.
    #[must_use]
    pub fn spawn_on(data_dir: &Path, addr: &str) -> Self {
        Self::start(data_dir, addr, "warn", Stdio::inherit(), &[])
    }

    /// Starts it on `addr` with settings in `KEYHOLE_*` environment variables (`env`).
    ///
    /// # Panics
    /// If it does not start.
    #[must_use]
    pub fn spawn_with(data_dir: &Path, addr: &str, env: &[(String, String)]) -> Self {
        Self::start(data_dir, addr, "warn", Stdio::inherit(), env)
    }

    /// Starts it logging at debug level into the file `log` (for tests that read the log).
    ///
    /// # Panics
    /// If the log cannot be created or the server does not start.
    #[must_use]
    pub fn spawn_logged(data_dir: &Path, log: &Path) -> Self {
        let file = std::fs::File::create(log).expect("creating the server log");
        Self::start(data_dir, "127.0.0.1:0", "debug", Stdio::from(file), &[])
    }

    fn start(
        data_dir: &Path,
        addr: &str,
        level: &str,
        log: Stdio,
        env: &[(String, String)],
    ) -> Self {
        let mut child = Command::new(binary("keyhole-server"))
            .args(["--insecure-http", "--listen", addr, "--data-dir"])
            .arg(data_dir)
            .env("KEYHOLE_LOG", level)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("starting keyhole-server");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let first = lines
            .next()
            .and_then(Result::ok)
            .expect("keyhole-server prints where it listens");
        let url = first
            .strip_prefix("keyhole-server listening on ")
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_owned();
        // Keep reading so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self {
            url,
            child: Some(child),
        }
    }

    /// The server's process id.
    ///
    /// # Panics
    /// If it was stopped.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("a running server").id()
    }

    /// Kills the server with SIGKILL: no shutdown, no flush.
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// Stops the server (SIGTERM) and checks it shut down cleanly.
    ///
    /// # Panics
    /// If it exits with an error.
    pub fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            assert!(terminate(&mut child), "keyhole-server did not stop cleanly");
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

/// A `keyhole-camera` process: its config file (state folder in `dir`, control endpoint on a
/// port the camera binds and reports) and, once started, the running agent.
pub struct CameraProcess {
    bin: PathBuf,
    config: PathBuf,
    /// `http://127.0.0.1:<port>` of the running camera's control endpoint.
    control: String,
    child: Option<Child>,
    http: reqwest::Client,
}

impl CameraProcess {
    /// A camera run by `bin`, configured with `settings` (TOML) plus a state folder in `dir`,
    /// its control endpoint on any free loopback port, and quick upload retries.
    ///
    /// # Panics
    /// If the config cannot be written.
    #[must_use]
    pub fn new(bin: &Path, dir: &Path, settings: &str) -> Self {
        let state = dir.join("camera-state");
        let config = dir.join("camera.toml");
        std::fs::write(
            &config,
            format!(
                "state_dir = {state:?}\ncontrol = \"127.0.0.1:0\"\n{settings}\n\
                 [upload]\nretry_min_s = 0.2\nretry_max_s = 1.0\n"
            ),
        )
        .expect("writing the camera's config");
        Self {
            bin: bin.to_owned(),
            config,
            control: String::new(),
            child: None,
            http: reqwest::Client::new(),
        }
    }

    /// `keyhole-camera --config <config>`, for any subcommand.
    #[must_use]
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--config").arg(&self.config);
        c
    }

    /// Pairs with `code` given on standard input; returns what the camera printed.
    ///
    /// # Panics
    /// If pairing fails.
    #[must_use]
    pub fn pair(&self, code: &str) -> String {
        use std::io::Write;
        let mut child = self
            .command()
            .args(["pair", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting keyhole-camera pair");
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(code.as_bytes())
            .expect("writing the code");
        let out = child.wait_with_output().expect("keyhole-camera pair");
        assert!(out.status.success(), "pairing failed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Whether `run` was started and not yet stopped or killed.
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts `keyhole-camera run` and reads where its control endpoint listens (bound before
    /// the camera says so, so it answers from then on).
    ///
    /// # Panics
    /// If it is already running or exits without saying where it listens.
    pub async fn start(&mut self) {
        self.start_with(Stdio::inherit()).await;
    }

    /// As [`CameraProcess::start`], keeping the camera's standard error for the caller to read.
    ///
    /// # Panics
    /// As [`CameraProcess::start`].
    pub async fn start_with_stderr(&mut self) -> std::process::ChildStderr {
        self.start_with(Stdio::piped()).await;
        self.child
            .as_mut()
            .and_then(|c| c.stderr.take())
            .expect("piped stderr")
    }

    async fn start_with(&mut self, stderr: Stdio) {
        assert!(self.child.is_none(), "the camera is already running");
        let mut child = self
            .command()
            .arg("run")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("starting keyhole-camera run");
        let stdout = child.stdout.take().expect("piped stdout");
        self.child = Some(child);
        self.control = tokio::task::spawn_blocking(move || {
            let mut lines = BufReader::new(stdout).lines();
            let control = lines
                .by_ref()
                .map_while(Result::ok)
                .find_map(|l| {
                    l.strip_prefix("keyhole-camera control on ")
                        .map(str::to_owned)
                })
                .expect("the camera exited before saying where its control endpoint listens");
            // Keep reading so the camera never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            control
        })
        .await
        .expect("reading the camera's output");
    }

    /// The running camera's status, or `None` if it does not answer.
    pub async fn status(&self) -> Option<Value> {
        let resp = self
            .http
            .get(format!("{}/status", self.control))
            .send()
            .await
            .ok()?;
        resp.json().await.ok()
    }

    /// `POST`s to the control endpoint (`/doorbell`, `/trigger`, …).
    ///
    /// # Panics
    /// If the camera refuses.
    pub async fn post(&self, path: &str) {
        let resp = self
            .http
            .post(format!("{}{path}", self.control))
            .send()
            .await
            .expect("reaching the camera's control endpoint");
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
    }

    /// Waits until the running camera's status satisfies `done`; returns that status.
    ///
    /// # Panics
    /// After `secs` seconds.
    pub async fn wait_for(&self, what: &str, secs: u64, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(s) = self.status().await
                && done(&s)
            {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {:?}",
                self.status().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the running camera's source has delivered `more` pictures after those it
    /// had; returns that status. At 15 pictures a second, 15 is a second of stream.
    ///
    /// # Panics
    /// If they do not come within 30 s and a second for every 5 pictures.
    pub async fn wait_for_pictures(&self, more: u64) -> Value {
        let had = self
            .status()
            .await
            .and_then(|s| s["pictures"].as_u64())
            .unwrap_or(0);
        self.wait_for(&format!("{more} more pictures"), 30 + more / 5, |s| {
            s["pictures"].as_u64() >= Some(had + more)
        })
        .await
    }

    /// SIGKILL: no chance to finish anything.
    ///
    /// # Panics
    /// If it is not running.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("a running camera");
        child.kill().ok();
        child.wait().ok();
    }

    /// Waits up to `secs` for the running camera to exit by itself; returns how it exited.
    ///
    /// # Panics
    /// If it is not running or still runs after `secs`.
    pub async fn exited_within(&mut self, secs: u64) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("a running camera");
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = child.try_wait().expect("the camera's exit status") {
                return status;
            }
            assert!(Instant::now() < deadline, "the camera kept running");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, then checks for a clean exit.
    ///
    /// # Panics
    /// If it is not running or exits with an error.
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("a running camera");
        assert!(terminate(&mut child), "keyhole-camera did not stop cleanly");
    }

    /// `keyhole-camera status --json` with the camera stopped.
    ///
    /// # Panics
    /// If the command fails.
    #[must_use]
    pub fn offline_status(&self) -> Value {
        let out = self
            .command()
            .args(["status", "--json"])
            .output()
            .expect("keyhole-camera status");
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).expect("status JSON")
    }
}

impl Drop for CameraProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().ok();
            c.wait().ok();
        }
    }
}

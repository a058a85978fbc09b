//! A running system to measure: the release `keyhole-server` as its own process on a temporary
//! folder (SQLite and blob folder, plain HTTP on loopback), an owner's account, and cameras
//! paired to it through the real flow.

use std::path::PathBuf;

use anyhow::Context;
use keyhole_camera::{Agent, AgentSettings};
use keyhole_client::Owner;
use keyhole_client::core::CameraId;
use keyhole_client::core::recovery::KdfParams;
use keyhole_http::Endpoint;
use keyhole_testkit::process::ServerProcess;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const PASSWORD: &str = "bench password 1";

pub struct World {
    pub server: ServerProcess,
    pub owner: Owner,
    pub rng: ChaCha20Rng,
    /// Holds the server's data and the cameras' state; removed on drop.
    pub dir: tempfile::TempDir,
    cameras: usize,
}

pub fn endpoint(url: &str) -> Endpoint {
    Endpoint {
        url: url.to_owned(),
        pin: None,
        allow_plain_http: false,
    }
}

/// Counts the bytes of every answer passing through an honest proxy: what a device downloads.
pub struct Counted {
    pub proxy: keyhole_testkit::hostile::HostileProxy,
    bytes: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Counted {
    async fn start(upstream: &str) -> Self {
        let proxy = keyhole_testkit::hostile::HostileProxy::start(upstream).await;
        let bytes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = bytes.clone();
        proxy.rewrite(
            |_, _| true,
            move |body| {
                counter.fetch_add(body.len() as u64, std::sync::atomic::Ordering::SeqCst);
            },
        );
        Self { proxy, bytes }
    }

    /// Response-body bytes so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl World {
    /// Starts a server and creates the owner's account on it.
    pub async fn start() -> anyhow::Result<Self> {
        Ok(Self::start_via(None).await?.0)
    }

    /// [`World::start`], with the owner's device reaching the server through a proxy that
    /// counts what it downloads (the cameras reach the server directly).
    pub async fn start_counted() -> anyhow::Result<(Self, Counted)> {
        let (world, counted) = Self::start_via(Some(())).await?;
        Ok((world, counted.context("a counting proxy")?))
    }

    async fn start_via(counted: Option<()>) -> anyhow::Result<(Self, Option<Counted>)> {
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("server");
        std::fs::create_dir_all(&data)?;
        let server = ServerProcess::spawn(&data);
        let counted = match counted {
            Some(()) => Some(Counted::start(&server.url).await),
            None => None,
        };
        let owner_url = counted
            .as_ref()
            .map_or_else(|| server.url.clone(), |c| c.proxy.url.clone());
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let (owner, _phrase) = Owner::create(
            &endpoint(&owner_url),
            "owner",
            PASSWORD,
            "phone",
            KdfParams::MINIMUM,
            keyhole_camera::now(),
            &mut rng,
        )
        .await
        .context("creating the owner's account")?;
        let world = Self {
            server,
            owner,
            rng,
            dir,
            cameras: 0,
        };
        Ok((world, counted))
    }

    /// The server's blob and database folder.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("server")
    }

    /// Pairs a new camera (state in its own folder under the world's) and gives it its record.
    pub async fn camera(&mut self) -> anyhow::Result<(Agent, CameraId)> {
        let url = self.server.url.clone();
        self.camera_via(&url, None).await
    }

    /// As [`World::camera`], with the camera told to reach the server at `url` (a proxy),
    /// pinning the certificate with SHA-256 `pin` if it is HTTPS.
    pub async fn camera_via(
        &mut self,
        url: &str,
        pin: Option<[u8; 32]>,
    ) -> anyhow::Result<(Agent, CameraId)> {
        self.cameras += 1;
        let state = self.camera_dir(self.cameras);
        let code = self.owner.start_pairing(url, pin, &mut self.rng).await?;
        let mut agent = Agent::pair(
            &code.to_text(),
            &state,
            AgentSettings::default(),
            &mut self.rng,
        )
        .await?;
        let id = self
            .owner
            .finish_pairing(
                &code,
                &format!("camera {}", self.cameras),
                keyhole_camera::now(),
                &mut self.rng,
            )
            .await?;
        agent.refresh_record(&mut self.rng).await?;
        // The device takes its viewing key from the key package it just sealed to itself.
        self.owner.sync().await?;
        Ok((agent, id))
    }

    /// The state folder of the `n`th camera paired.
    pub fn camera_dir(&self, n: usize) -> PathBuf {
        self.dir.path().join(format!("camera-{n}"))
    }
}

/// Peak and current resident memory of a process, in bytes, from `/proc/<pid>/status`.
pub fn memory(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .context("no such field in /proc status")?
            .trim()
            .parse()?;
        Ok(kb * 1024)
    };
    Ok((field("VmHWM:")?, field("VmRSS:")?))
}

/// CPU time a process has used (user and system), from `/proc/<pid>/stat`.
pub fn cpu_time(pid: u32) -> anyhow::Result<std::time::Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("malformed /proc stat")?
        .1
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: u64 = fields
        .get(11..13)
        .context("short /proc stat")?
        .iter()
        .map(|f| f.parse::<u64>())
        .sum::<Result<u64, _>>()?;
    // Linux reports in USER_HZ, 100 on every architecture it runs on.
    Ok(std::time::Duration::from_millis(ticks * 10))
}

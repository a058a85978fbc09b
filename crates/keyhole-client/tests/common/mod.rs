//! Shared by the client's tests: a camera agent running in this process, and a device joined
//! by approval.
#![allow(dead_code, clippy::unwrap_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::time::Duration;

use keyhole_camera::Agent;
use keyhole_camera::config::{Config, Profile, RecordMode};
use keyhole_camera::source::SourceConfig;

/// A paired camera running on its synthetic scene (with `marker` drawn into it), recording
/// only events, motion detection off; its control API answers at `control`.
pub struct RunningCamera {
    pub control: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), keyhole_camera::run::RunError>>,
}

impl RunningCamera {
    /// Starts `agent` (its state in `state_dir`) and waits until its control API answers.
    pub async fn start(agent: Agent, state_dir: &Path, marker: Option<&str>) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut config = Config {
            state_dir: state_dir.to_owned(),
            profile: Profile::Wired,
            control: format!("127.0.0.1:{port}").parse().unwrap(),
            source: SourceConfig::Synthetic {
                width: 320,
                height: 240,
                fps: 15,
                visit_every_s: None,
                marker: marker.map(str::to_owned),
            },
            ..Config::default()
        };
        config.record.mode = Some(RecordMode::Events);
        config.motion.enabled = false;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(keyhole_camera::run::run(config, agent, async {
            stopped.await.ok();
        }));
        let control = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while reqwest::get(format!("{control}/status")).await.is_err() {
            assert!(std::time::Instant::now() < deadline, "camera did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            control,
            stop,
            task,
        }
    }

    /// Stops the camera; how its run ended.
    pub async fn stop(self) -> Result<(), String> {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(ended) => ended.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// A new device `name` joined to `user`'s account by approval from `approver` at `now`, as a
/// person does it: the request, both screens showing the same code, the approval, the grant.
pub async fn join_by_approval(
    approver: &mut keyhole_client::Owner,
    endpoint: &keyhole_http::Endpoint,
    (user, name): (&str, &str),
    now: keyhole_client::core::Timestamp,
    rng: &mut rand_chacha::ChaCha20Rng,
) -> keyhole_client::Owner {
    let mut joining =
        keyhole_client::JoinRequest::start(endpoint, user, "correct horse battery", name, rng)
            .await
            .unwrap();
    let pending = approver.pending_enrollments().await.unwrap();
    let waiting = pending
        .iter()
        .find(|p| p.request.device_id == joining.device_id())
        .unwrap()
        .clone();
    let (code, approval) = tokio::join!(
        joining.exchange(),
        approver.answer_enrollment(&waiting, rng)
    );
    let approval = approval.unwrap();
    assert_eq!(code.unwrap(), approval.code());
    approver
        .approve_enrollment(approval, now, rng)
        .await
        .unwrap();
    joining.finish(rng).await.unwrap()
}

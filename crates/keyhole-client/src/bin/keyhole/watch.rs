//! `keyhole watch`: follows cameras and prints each new event as it arrives, verified and
//! opened on this device. The server's announcement channel says when a camera has something
//! new; the device then syncs that camera's index, which verifies it as every listing is, and
//! prints the events the index holds past the last one printed (so events another process on
//! this device synced first, `keyhole ui` say, are printed too). The channel is opened before
//! each sync, so nothing stored in between is missed, and opened again (then everything
//! synced) whenever it drops.

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use keyhole_client::ClientError;
use keyhole_client::core::CameraId;
use keyhole_client::index::{Index, IndexedEvent};
use keyhole_client::wire::announce::Message;
use rand_core::OsRng;

use crate::commands::Device;
use crate::desktop::Desktop;
use crate::events;

/// What to follow and what to do with each event.
pub(crate) struct Options {
    /// Camera names or ids; every camera (those added later too) if empty.
    pub(crate) cameras: Vec<String>,
    pub(crate) json: bool,
    pub(crate) thumbnails: Option<PathBuf>,
    /// A shell command run per event, the event as JSON on its standard input.
    pub(crate) exec: Option<String>,
    /// Show a desktop notification per event where a notification service runs.
    pub(crate) notify: bool,
}

/// The longest wait between attempts to reach the server.
const MAX_RETRY: Duration = Duration::from_secs(30);

/// Follows until stopped; returns only on an error that retrying cannot cure.
pub(crate) async fn watch(store: &Path, options: &Options) -> anyhow::Result<bool> {
    let mut device = Device::open(store)?;
    let mut index = device.index()?;
    let desktop = if options.notify {
        tokio::task::spawn_blocking(Desktop::find)
            .await
            .ok()
            .flatten()
    } else {
        None
    };
    let mut watcher = Watcher {
        options,
        desktop,
        printed: HashMap::new(),
        problems: HashSet::new(),
        started: false,
        since: keyhole_client::now(),
    };
    let mut retry = Duration::from_secs(1);
    loop {
        match watcher.follow(&mut device, &mut index).await {
            // Only a channel that broke comes back: reconnect at once.
            Ok(why) => {
                errln!("keyhole watch: {why}; reconnecting");
                retry = Duration::from_secs(1);
            }
            Err(e) if e.downcast_ref::<ClientError>().is_some_and(passing) => {
                errln!(
                    "keyhole watch: {e:#}; trying again in {} s",
                    retry.as_secs()
                );
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(MAX_RETRY);
            }
            Err(e) => return Err(e),
        }
    }
}

/// A failure that trying again may cure: the network, the server restarting.
fn passing(e: &ClientError) -> bool {
    match e {
        ClientError::Http(_) | ClientError::Announcements(_) => true,
        ClientError::Server { status, .. } => *status >= 500,
        _ => false,
    }
}

struct Watcher<'a> {
    options: &'a Options,
    /// The desktop's notification service, if one answered.
    desktop: Option<Desktop>,
    /// Per camera, the sequence number of the last event printed (or there before it was
    /// first synced here: history, not news).
    printed: HashMap<CameraId, u64>,
    /// Problems already reported.
    problems: HashSet<String>,
    /// Whether the first sync is done.
    started: bool,
    /// When watching began.
    since: keyhole_client::core::Timestamp,
}

type Followed = Vec<(CameraId, String)>;

impl Watcher<'_> {
    /// Opens the channel, syncs everything, then syncs each camera it announces. Returns why
    /// the channel ended.
    async fn follow(&mut self, device: &mut Device, index: &mut Index) -> anyhow::Result<String> {
        let mut channel = device.owner.announcements().await?;
        let mut cameras = self.sync_all(device, index).await?;
        if !self.started {
            self.started = true;
            let names: Vec<_> = cameras.iter().map(|(_, name)| name.as_str()).collect();
            errln!(
                "keyhole watch: following {}; new events are printed as they arrive",
                if names.is_empty() {
                    "no camera yet".to_owned()
                } else {
                    names.join(", ")
                }
            );
        }
        loop {
            match channel.next().await {
                Ok(Message::Objects { camera, .. }) => {
                    let camera = CameraId(camera);
                    match cameras.iter().find(|(id, _)| *id == camera) {
                        Some((_, name)) => {
                            let name = name.clone();
                            self.sync_camera(device, index, camera, &name).await?;
                        }
                        // A camera this device does not know yet (paired or shared since):
                        // the account log says whether it is followed.
                        None if self.options.cameras.is_empty() => {
                            cameras = self.sync_all(device, index).await?;
                        }
                        None => {}
                    }
                }
                Ok(Message::Resync) => cameras = self.sync_all(device, index).await?,
                Ok(Message::Ready) => {}
                Err(ClientError::Announcements(why)) => return Ok(why),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Brings the account up to date, then every followed camera; returns them.
    async fn sync_all(
        &mut self,
        device: &mut Device,
        index: &mut Index,
    ) -> anyhow::Result<Followed> {
        if device.owner.sync().await? {
            device.save()?;
        }
        let cameras = self.followed(device)?;
        for (camera, name) in &cameras {
            self.sync_camera(device, index, *camera, name).await?;
        }
        Ok(cameras)
    }

    /// The cameras followed: those named (an unknown name is an error), or every one.
    fn followed(&self, device: &Device) -> anyhow::Result<Followed> {
        let all: Vec<(CameraId, String)> = device
            .owner
            .cameras()
            .into_iter()
            .map(|(id, name, ..)| (id, name))
            .collect();
        if self.options.cameras.is_empty() {
            return Ok(all);
        }
        self.options
            .cameras
            .iter()
            .map(|named| {
                let id = device.camera(named)?;
                Ok(all
                    .iter()
                    .find(|(c, _)| *c == id)
                    .cloned()
                    .unwrap_or((id, named.clone())))
            })
            .collect()
    }

    /// Syncs `camera`'s index; announces the events it had not seen, and new problems.
    async fn sync_camera(
        &mut self,
        device: &mut Device,
        index: &mut Index,
        camera: CameraId,
        name: &str,
    ) -> anyhow::Result<()> {
        let held = device.held(&camera);
        match device
            .owner
            .sync_index(&camera, index, keyhole_client::now(), &mut OsRng)
            .await
        {
            Ok(_) => {}
            // A camera whose owner stopped sharing it: no longer served here.
            Err(ClientError::Server { status: 404, .. })
                if device.owner.shared_by(&camera).is_some() =>
            {
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        if device.held(&camera) != held {
            device.save()?;
        }
        let after = self.printed.get(&camera).copied();
        let new = index.events_after(&camera, after.unwrap_or(0))?;
        self.printed.insert(
            camera,
            new.last().map_or(after.unwrap_or(0), |&(last, _)| last),
        );
        for (_, event) in new {
            let Some(e) = index.event(&event)? else {
                continue;
            };
            // A camera's first sync here finds its history: news only once watching began,
            // from a camera added since.
            let news = match after {
                Some(_) => true,
                None => self.started && e.captured_at >= self.since,
            };
            if news {
                self.announce(&e, name);
            }
        }
        self.report_problems(index, camera, name)
    }

    /// Prints the problems the index holds for `camera` that were not printed yet.
    fn report_problems(
        &mut self,
        index: &Index,
        camera: CameraId,
        name: &str,
    ) -> anyhow::Result<()> {
        for p in index.problems(&camera)? {
            let line = match p.object {
                Some(object) => format!("{name}: object {object}: {}", p.problem),
                None => format!("{name}: {}", p.problem),
            };
            if self.problems.insert(line.clone()) {
                errln!("keyhole watch: PROBLEM: {line}");
            }
        }
        Ok(())
    }

    /// Prints `e`, saves its thumbnail, shows it on the desktop and runs the command, as asked.
    fn announce(&self, e: &IndexedEvent, name: &str) {
        let thumbnail = self.options.thumbnails.as_ref().and_then(|dir| {
            events::save_thumbnail(dir, e).unwrap_or_else(|err| {
                errln!(
                    "keyhole watch: could not save the thumbnail in {}: {err}",
                    dir.display()
                );
                None
            })
        });
        let mut json = events::event_json(e, name);
        json["thumbnail"] = thumbnail.map(|p| p.display().to_string()).into();
        if self.options.json {
            outln!("{json}");
        } else {
            outln!(
                "{}  {:<12}  {:<8}  {}{}(event {})",
                e.details.started_at,
                crate::out::printable(name),
                format!("{:?}", e.details.kind).to_lowercase(),
                if e.details.note.is_empty() {
                    String::new()
                } else {
                    format!("{}  ", crate::out::printable(&e.details.note))
                },
                e.details
                    .clip
                    .map_or_else(String::new, |c| format!("clip {c}  ")),
                e.event,
            );
        }
        if let Some(desktop) = &self.desktop {
            desktop.show(e, name);
        }
        if let Some(command) = &self.options.exec {
            run(command, json.to_string());
        }
    }
}

/// Runs `command` with `sh -c`, `event` on its standard input, without waiting for it: a slow
/// command holds up no later event. Its failure is reported.
fn run(command: &str, event: String) {
    let command = command.to_owned();
    std::thread::spawn(move || {
        let child = std::process::Command::new("sh")
            .args(["-c", &command])
            .stdin(std::process::Stdio::piped())
            .spawn();
        let outcome = child.and_then(|mut child| {
            if let Some(mut stdin) = child.stdin.take() {
                // A command that does not read its input is not a failure.
                let _ = stdin.write_all(event.as_bytes());
                let _ = stdin.write_all(b"\n");
            }
            child.wait()
        });
        match outcome {
            Ok(status) if status.success() => {}
            Ok(status) => errln!("keyhole watch: --exec command ended with {status}"),
            Err(e) => errln!("keyhole watch: could not run the --exec command: {e}"),
        }
    });
}

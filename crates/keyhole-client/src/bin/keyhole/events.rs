//! `keyhole events`: events from the device's index, after bringing it up to date with what is
//! new on the server (or, out of reach, as the index last saw it).

use std::path::Path;

use keyhole_client::ClientError;
use keyhole_client::core::CameraId;
use keyhole_client::index::{EventQuery, IndexedEvent};
use rand_core::OsRng;

use crate::commands::{Device, reason, unreachable};
use crate::when;

/// Which events were asked for.
pub(crate) struct Wanted {
    /// Camera names or ids; every camera if empty.
    pub(crate) cameras: Vec<String>,
    pub(crate) since: Option<String>,
    pub(crate) until: Option<String>,
    pub(crate) limit: usize,
}

pub(crate) async fn events(
    store: &Path,
    wanted: &Wanted,
    thumbnails: Option<&Path>,
    json: bool,
) -> anyhow::Result<bool> {
    let now = keyhole_client::now();
    let parse = |t: &Option<String>| t.as_deref().map(|t| when::parse(t, now)).transpose();
    let (since, until) = (parse(&wanted.since)?, parse(&wanted.until)?);
    let (mut device, notice) = Device::open_synced_or_held(store).await?;
    let mut offline = notice.is_some();
    let cameras: Vec<(CameraId, String)> = if wanted.cameras.is_empty() {
        device
            .owner
            .cameras()
            .into_iter()
            .map(|(id, name, ..)| (id, name))
            .collect()
    } else {
        let all = device.owner.cameras();
        wanted
            .cameras
            .iter()
            .map(|named| {
                let id = device.camera(named)?;
                let name = all
                    .iter()
                    .find(|(c, ..)| *c == id)
                    .map_or_else(|| named.clone(), |(_, name, ..)| name.clone());
                Ok((id, name))
            })
            .collect::<anyhow::Result<_>>()?
    };
    let mut index = device.index()?;
    let mut problems = Vec::new();
    let mut moved = false;
    for (camera, name) in &cameras {
        if !offline {
            let held = device.held(camera);
            match device
                .owner
                .sync_index(camera, &mut index, now, &mut OsRng)
                .await
            {
                Ok(report) => {
                    if let Some(since) = report.silent_since {
                        problems.push(format!(
                            "{name}: SILENT no signed word from the camera since {since}, longer \
                             than it promised: it may be offline, or the server may be \
                             withholding what it sends"
                        ));
                    }
                }
                Err(ClientError::Http(e)) if unreachable(&e) => {
                    errln!(
                        "OFFLINE: the server at {} cannot be reached ({}); events as this \
                         device last saw them",
                        device.owner.endpoint().url,
                        reason(&e)
                    );
                    offline = true;
                }
                // A camera whose owner stopped sharing it: no longer served here.
                Err(ClientError::Server { status: 404, .. })
                    if device.owner.shared_by(camera).is_some() => {}
                Err(e) => return Err(e.into()),
            }
            moved |= device.held(camera) != held;
        }
        if offline {
            let as_of = index
                .synced_at(camera)?
                .map_or_else(|| "never synced".to_owned(), |t| format!("as of {t}"));
            errln!("{name}: offline — {as_of}");
        }
        for p in index.problems(camera)? {
            problems.push(match p.object {
                Some(object) => format!("{name}: object {object}: {}", p.problem),
                None => format!("{name}: {}", p.problem),
            });
        }
    }
    if moved {
        device.save()?;
    }
    let listed = index.events(&EventQuery {
        cameras: cameras.iter().map(|(id, _)| *id).collect(),
        since,
        until,
        limit: Some(wanted.limit),
    })?;
    if let Some(dir) = thumbnails {
        save_thumbnails(dir, &listed)?;
    }
    let name_of = |id: &CameraId| {
        cameras
            .iter()
            .find(|(c, _)| c == id)
            .map_or_else(|| id.to_string(), |(_, n)| n.clone())
    };
    if json {
        let list: Vec<_> = listed
            .iter()
            .map(|e| event_json(e, &name_of(&e.camera)))
            .collect();
        outln!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        for e in &listed {
            outln!(
                "{}  {:<12}  {:<8}  {:>8}  clip {}  (event {})",
                e.details.started_at,
                name_of(&e.camera),
                format!("{:?}", e.details.kind).to_lowercase(),
                // A press is sealed as it begins: its clip shows how long it lasted.
                match e.details.duration_ms {
                    0 => "-".to_owned(),
                    ms => format!("{:.1} s", f64::from(ms) / 1000.0),
                },
                e.details
                    .clip
                    .map_or_else(|| "none".to_owned(), |c| c.to_string()),
                e.event,
            );
        }
        if listed.len() == wanted.limit {
            errln!(
                "(the newest {}; pass --limit or --until for more)",
                wanted.limit
            );
        }
    }
    for p in &problems {
        errln!("{p}");
    }
    Ok(problems.is_empty())
}

/// An event as `--json` prints it (`keyhole events`, a line each for `keyhole watch`).
pub(crate) fn event_json(e: &IndexedEvent, camera_name: &str) -> serde_json::Value {
    serde_json::json!({
        "camera": e.camera.to_string(),
        "camera_name": camera_name,
        "event_id": e.event.to_string(),
        "kind": format!("{:?}", e.details.kind).to_lowercase(),
        "started_at": e.details.started_at.to_string(),
        "duration_ms": e.details.duration_ms,
        "clip": e.details.clip.map(|c| c.to_string()),
        "note": e.details.note,
    })
}

/// Saves `e`'s thumbnail as `<event id>.jpg` in `dir`; where, if it has one.
pub(crate) fn save_thumbnail(
    dir: &Path,
    e: &IndexedEvent,
) -> std::io::Result<Option<std::path::PathBuf>> {
    if e.details.thumbnail_jpeg.is_empty() {
        return Ok(None);
    }
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{}.jpg", e.event));
    std::fs::write(&path, &e.details.thumbnail_jpeg)?;
    Ok(Some(path))
}

fn save_thumbnails(dir: &Path, events: &[IndexedEvent]) -> anyhow::Result<()> {
    for e in events {
        save_thumbnail(dir, e)?;
    }
    Ok(())
}

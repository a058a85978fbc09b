//! `keyhole-demo`: every part running for real on this machine, in one process. It lives apart
//! from the `keyhole` command so that building the owner's device never builds the server and
//! the camera.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail, ensure};
use keyhole_camera::{Agent, AgentSettings};
use keyhole_client::Owner;
use keyhole_client::core::event::{EventDetails, EventKind};
use keyhole_client::core::recovery::KdfParams;
use keyhole_client::core::report::Checked;
use keyhole_client::core::{ObjectId, Timestamp};
use keyhole_http::Endpoint;
use keyhole_server::{AppState, Config, tls};
use rand_core::{OsRng, RngCore};

/// `println!` that stops quietly when standard output's reader has gone
/// (`keyhole-demo | head`), instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `print!` as [`outln!`] is `println!`.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// Run the whole system on this machine and show it working: the embedded server (SQLite and a
/// folder, HTTPS with a self-signed certificate) in a temporary folder, an account, a paired
/// simulated camera that records sealed clips and events, verification and export on the
/// owner's device, a search of everything the server stored for the video's plaintext, and a
/// tampered clip being caught.
#[derive(clap::Parser)]
#[command(name = "keyhole-demo", version)]
struct Args {
    /// Keep the server's data and the exported clips in this folder instead of a temporary one.
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = <Args as clap::Parser>::parse();
    let result = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(run(args.dir)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyhole-demo: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn now() -> Timestamp {
    Timestamp(u64::try_from(keyhole_server::now_ms()).unwrap_or(0))
}

fn step(n: u32, what: &str) {
    outln!("\n[{n}] {what}");
}

/// A real H.264 clip from the synthetic camera, as MP4, with `canary` written into every key
/// frame as an SEI user-data message (ignored by players, but plain bytes a search would find),
/// its chime as Opus sound, and a JPEG thumbnail of its first picture.
fn synthetic_clip(canary: &[u8], seconds: usize) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    use keyhole_camera::sound::Tone;
    use keyhole_camera::video::decode::{FrameDecoder, thumbnail_jpeg};
    use keyhole_camera::video::synthetic::{SyntheticCamera, SyntheticSettings};
    use keyhole_sound::OpusEncoder;
    let mut camera = SyntheticCamera::new(SyntheticSettings::default())?;
    camera.set_motion(true);
    camera.set_marker(canary)?;
    let fps = SyntheticSettings::default().fps as usize;
    let pictures = (0..seconds * fps)
        .map(|_| camera.next_frame())
        .collect::<Result<Vec<_>, _>>()?;
    let mut encoder = OpusEncoder::new(16_000, 24_000)?;
    let frames = encoder.push(0, &Tone::default().next(seconds * 16_000, 16_000, true))?;
    let sound = keyhole_media::audio::Audio {
        config: encoder.config().as_ref().clone(),
        frames,
    };
    let mut decoder = FrameDecoder::new(1, 1)?;
    let thumbnail = match decoder.decode(&pictures[0], true)? {
        Some(picture) => thumbnail_jpeg(&picture)?,
        None => Vec::new(),
    };
    Ok((
        keyhole_media::mp4::write(&pictures, Some(&sound))?,
        thumbnail,
    ))
}

/// Every file under `dir` (database, WAL, blobs, partial uploads, certificates).
fn files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(files(&path)?);
        } else {
            out.push(path);
        }
    }
    Ok(out)
}

async fn run(keep: Option<PathBuf>) -> anyhow::Result<()> {
    let temp = tempfile::tempdir().context("making a temporary folder")?;
    let data = keep.unwrap_or_else(|| temp.path().to_owned());
    let rng = &mut OsRng;

    step(
        1,
        "Starting the embedded server (SQLite + folder, HTTPS with a self-signed certificate)",
    );
    let config = Config {
        data_dir: data.clone(),
        ..Config::default()
    };
    std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
    let certificate = tls::load_or_create(&config)?;
    let state = AppState::open(config).await?;
    // The same storage, for playing a hostile server in step 8.
    let hostile = state.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("https://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tls::serve_https(
        listener,
        state,
        certificate.config.clone(),
        async {
            let _ = stopped.await;
        },
    ));
    outln!("    {url}, data in {}", data.display());
    outln!(
        "    certificate fingerprint {}",
        hex::encode(certificate.fingerprint)
    );

    step(2, "Setting up an account on the owner's phone");
    let endpoint = Endpoint {
        url: url.clone(),
        pin: Some(certificate.fingerprint),
        allow_plain_http: false,
    };
    let mut password = [0u8; 12];
    rng.fill_bytes(&mut password);
    let password = hex::encode(password);
    let (mut owner, phrase) = Owner::create(
        &endpoint,
        "demo-owner",
        &password,
        "Demo phone",
        KdfParams::DEFAULT,
        now(),
        rng,
    )
    .await?;
    outln!("    account code:    {}", owner.account_code());
    outln!(
        "    recovery phrase: {} (shown once; it restores everything)",
        &*phrase.words()
    );

    step(
        3,
        "Pairing a simulated camera with a pairing code (it pins the account key and the certificate)",
    );
    let code = owner
        .start_pairing(&url, Some(certificate.fingerprint), rng)
        .await?;
    let text = code.to_text();
    outln!("    pairing code: {}…", &text[..48.min(text.len())]);
    let mut camera =
        Agent::pair(&text, &data.join("camera"), AgentSettings::default(), rng).await?;
    let camera_id = owner
        .finish_pairing(&code, "Front door", now(), rng)
        .await?;
    ensure!(
        camera_id == camera.camera_id(),
        "paired a different camera than the one that registered"
    );
    outln!("    camera {camera_id} paired; its key was proven with the pairing secret");

    step(
        4,
        "The camera records three events: a sealed clip and sealed event details each",
    );
    let mut canary = *b"KEYHOLE-CANARY-0000000000000000";
    rng.fill_bytes(&mut canary[15..]);
    for b in &mut canary[15..] {
        *b = b'A' + (*b % 26);
    }
    let mut clips: Vec<(ObjectId, Vec<u8>)> = Vec::new();
    for n in 1..=3 {
        let (video, thumbnail) = synthetic_clip(&canary, 2 + n)?;
        let clip = camera.record_clip(&video, now(), rng).await?;
        let details = EventDetails {
            kind: if n == 2 {
                EventKind::Doorbell
            } else {
                EventKind::Motion
            },
            started_at: now(),
            duration_ms: u32::try_from((2 + n) * 1000)?,
            clip: Some(clip),
            note: format!("front path {}", String::from_utf8_lossy(&canary)),
            thumbnail_jpeg: thumbnail,
        };
        camera.record_event(&details, rng).await?;
        camera.upload_pending().await?;
        outln!(
            "    event {n}: a {}-second H.264 clip ({} bytes of MP4) and its event with a thumbnail, sealed and uploaded",
            2 + n,
            video.len()
        );
        clips.push((clip, video));
    }

    step(
        5,
        "The owner's phone verifies the camera's chain from the listing alone, then exports the clips",
    );
    owner.sync().await?;
    let report = owner.verify(&camera_id).await?;
    out!("{}", indent(&report.to_string()));
    ensure!(
        report.is_clean() && report.entries.len() == 6,
        "the honest server's listing did not verify"
    );
    let exports = data.join("exported");
    std::fs::create_dir_all(&exports)?;
    for (id, video) in &clips {
        let mut out = Vec::new();
        let checked = owner.export(&camera_id, id, &mut out).await?;
        ensure!(
            matches!(checked, Checked::Verified(_)) && out == *video,
            "export of {id} did not verify"
        );
        let mp4 = keyhole_media::mp4::read(&out)?;
        outln!(
            "    {id}.mp4: {} pictures, {}x{}, starting at a key frame; {} frames of {} sound",
            mp4.access_units.len(),
            mp4.width,
            mp4.height,
            mp4.audio.as_ref().map_or(0, |a| a.frames.len()),
            mp4.audio
                .as_ref()
                .map_or("no".into(), |a| a.config.codec_string()),
        );
        std::fs::write(exports.join(format!("{id}.mp4")), &out)?;
    }
    outln!(
        "    3 clips exported to {}, identical to what the camera recorded (play them with any player)",
        exports.display()
    );

    step(
        6,
        "Searching everything the server stored for the plaintext",
    );
    let stored: Vec<PathBuf> = files(&data)?
        .into_iter()
        .filter(|p| !p.starts_with(&exports))
        .collect();
    let mut bytes = 0usize;
    for path in &stored {
        let content = std::fs::read(path)?;
        bytes += content.len();
        if content.windows(canary.len()).any(|w| w == canary) {
            bail!("plaintext found in {}", path.display());
        }
    }
    outln!(
        "    canary {} not found in {} files ({bytes} bytes)",
        String::from_utf8_lossy(&canary),
        stored.len()
    );

    step(
        7,
        "A hostile server flips one bit of a stored clip; the full check opens every object",
    );
    let (victim, _) = &clips[1];
    let blob = data
        .join("blobs/objects")
        .join(hex::encode(&victim.0[..1]))
        .join(victim.to_string());
    let mut sealed = std::fs::read(&blob)?;
    let middle = sealed.len() / 2;
    sealed[middle] ^= 1;
    std::fs::write(&blob, sealed)?;
    // The listing still carries the clip's signed summary, so only opening it shows the change:
    // the full check downloads every object.
    let report = owner
        .verify_full_at(&camera_id, keyhole_client::now(), &mut |_, _| {})
        .await?;
    out!("{}", indent(&report.to_string()));
    ensure!(!report.is_clean(), "the tampered clip was not caught");

    step(
        8,
        "A tablet is enrolled, then revoked; with its key and the password it signs a new epoch",
    );
    revoked_device(
        &mut owner,
        &mut camera,
        (&endpoint, &password),
        &hostile,
        &camera_id,
    )
    .await?;

    let _ = stop.send(());
    server.await?;
    outln!(
        "\nDemo complete: everything verified, no plaintext on the server, tampering caught, a \
         revoked device refused."
    );
    Ok(())
}

/// A tablet enrolled and revoked, which keeps its signing key and knows the password, signs a
/// camera record naming a viewing key of its own: the server refuses it, and when a hostile
/// server stores it anyway, the camera and the owner's phone refuse it, naming the tablet.
async fn revoked_device(
    owner: &mut Owner,
    camera: &mut Agent,
    (endpoint, password): (&Endpoint, &str),
    hostile: &AppState,
    camera_id: &keyhole_client::core::CameraId,
) -> anyhow::Result<()> {
    use keyhole_client::api::Api;
    use keyhole_client::core::log::{ENTRY_LEN, EntryBody, EntryKind, SignedEntry, statement_hash};
    use keyhole_client::core::record::SignedCameraRecord;
    use keyhole_client::core::roster::DeviceEntry;
    use keyhole_client::core::signer::SignerKey;
    use keyhole_client::core::{DeviceId, DeviceKeys, HpkeSecretKey};
    use keyhole_server::store::{LogAppend, Logged};

    let rng = &mut OsRng;
    let tablet = DeviceKeys::generate(rng);
    let tablet_id = DeviceId::random(rng);
    owner
        .add_device(
            DeviceEntry {
                id: tablet_id,
                name: "Demo tablet".into(),
                added_at: now(),
                signing_key: tablet.signing.public(),
                hpke_key: tablet.hpke.public(),
            },
            now(),
            rng,
        )
        .await?;
    let epochs = owner.revoke_device(tablet_id, now(), rng).await?;
    outln!(
        "    tablet {tablet_id} enrolled, then revoked: a roster without it, the camera at epoch {}",
        epochs.first().map_or(0, |(_, e)| *e)
    );

    // The password gets the tablet only a credential for joining or recovering.
    let login: serde_json::Value = Api::new(endpoint)?
        .post_json(
            "/v1/login",
            &serde_json::json!({
                "username": "demo-owner",
                "password": password,
                "device_id": tablet_id.to_string(),
            }),
        )
        .await?;
    let api = Api::new(endpoint)?.with_token(
        login["token"]
            .as_str()
            .context("the login gave no credential")?
            .to_owned(),
    );
    let account = hostile
        .meta
        .camera(&camera_id.0)
        .await?
        .context("the camera is not stored")?
        .account_id;
    let stored = hostile
        .meta
        .objects(&camera_id.0, 0, i64::MIN..i64::MAX, 1)
        .await?;
    let object = stored.first().context("the camera stored nothing")?;
    match api
        .delete(&format!(
            "/v1/objects/{}",
            keyhole_client::core::ObjectId(object.object_id)
        ))
        .await
    {
        Err(keyhole_client::ClientError::Server { message, .. }) => {
            outln!("    with the password it deletes nothing: {message}");
        }
        other => bail!("a password credential deleted footage: {other:?}"),
    }

    // A new epoch signed with its key, from the head of the log and the camera's record.
    let entries = api.get_bytes("/v1/log").await?;
    let head = SignedEntry::decode(
        entries
            .chunks(ENTRY_LEN)
            .last()
            .context("the account log is empty")?,
    )?;
    let record = SignedCameraRecord::decode(
        &hostile
            .meta
            .camera_record(&camera_id.0, None)
            .await?
            .context("the camera has no record")?,
    )?;
    let mut epoch = record.unverified_body().clone();
    epoch.version += 1;
    epoch.epoch += 1;
    epoch.viewing_key = HpkeSecretKey::generate(rng).public();
    let as_tablet = SignerKey::Device {
        id: tablet_id,
        key: &tablet.signing,
    };
    let rogue = epoch.sign(as_tablet)?;
    let entry = EntryBody {
        sequence: head.unverified_body().sequence + 1,
        previous: head.hash(),
        issued_at: now(),
        kind: EntryKind::CameraRecord,
        subject: camera_id.0,
        version: rogue.unverified_body().version,
        statement: statement_hash(rogue.encoded()),
        ..head.unverified_body().clone()
    }
    .sign(as_tablet)?;
    match api
        .post_bytes::<serde_json::Value>("/v1/log", [entry.encoded(), rogue.encoded()].concat())
        .await
    {
        Err(keyhole_client::ClientError::Server { message, .. }) => {
            outln!(
                "    it signs a new epoch naming a key of its own; the server refuses it: {message}"
            );
        }
        other => bail!("the server took a revoked device's record: {other:?}"),
    }

    // A hostile server stores it anyway.
    hostile
        .meta
        .append_log(
            &account,
            &LogAppend {
                sequence: i64::try_from(entry.unverified_body().sequence)?,
                previous: head.hash().0,
                hash: entry.hash().0,
                entry: entry.encoded(),
                statement: Logged::CameraRecord {
                    camera_id: camera_id.0,
                    version: i64::try_from(rogue.unverified_body().version)?,
                    body: rogue.encoded(),
                },
                account_key: None,
            },
        )
        .await?;
    match camera
        .record_clip(b"after the revocation", now(), rng)
        .await
    {
        Err(e) => outln!("    a server that stores it anyway: the camera refuses it: {e}"),
        Ok(_) => bail!("the camera sealed to a revoked device's key"),
    }
    match owner.sync().await {
        Err(e) => outln!("    and the owner's phone refuses it: {e}"),
        Ok(_) => bail!("the phone took a revoked device's record"),
    }
    Ok(())
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

//! The owner's everyday commands, each working from the device's key store.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use keyhole_client::Owner;
use keyhole_client::core::envelope::ObjectKind;
use keyhole_client::core::event::EventDetails;
use keyhole_client::core::recovery::{KdfParams, RecoveryPhrase};
use keyhole_client::core::report::Checked;
use keyhole_client::core::{CameraId, DeviceId, ObjectId, Timestamp};
use keyhole_client::now;
use keyhole_http::Endpoint;
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

/// Where the key store lives unless `--store` says otherwise.
pub(crate) fn default_store() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("keyhole").join("device.keys")
}

/// A secret from the environment variable `var` (for scripts), else asked for on the terminal
/// without echo.
fn secret(var: &str, prompt: &str) -> anyhow::Result<Zeroizing<String>> {
    if let Ok(value) = std::env::var(var) {
        return Ok(Zeroizing::new(value));
    }
    rpassword::prompt_password(prompt)
        .map(Zeroizing::new)
        .with_context(|| format!("cannot ask for it here; set {var}"))
}

fn passphrase() -> anyhow::Result<Zeroizing<String>> {
    secret("KEYHOLE_PASSPHRASE", "Key store passphrase: ")
}

/// Tries on the terminal before giving up: a mistyped secret is asked again.
const TRIES: usize = 3;

/// A new secret from `var`, else typed twice on the terminal (asked again, up to [`TRIES`]
/// times, when the two differ): a typo here would lock the user out of what it protects.
fn new_secret(var: &str, prompt: &str) -> anyhow::Result<Zeroizing<String>> {
    if let Ok(value) = std::env::var(var) {
        return Ok(Zeroizing::new(value));
    }
    for _ in 0..TRIES {
        let first = secret(var, prompt)?;
        let again = secret(var, "The same again: ")?;
        if first == again {
            return Ok(first);
        }
        errln!("The two differ; once more.");
    }
    bail!("the two entries differed {TRIES} times; nothing was set")
}

/// The device, opened from its key store.
pub(crate) struct Device {
    pub(crate) owner: Owner,
    store: PathBuf,
    passphrase: Zeroizing<String>,
}

impl Device {
    pub(crate) fn open(store: &Path) -> anyhow::Result<Self> {
        if !store.exists() {
            bail!(
                "no key store at {}; set up an account with `keyhole init` first",
                store.display()
            );
        }
        // A passphrase mistyped on the terminal is asked again; one from the environment is
        // tried once.
        let asking = std::env::var_os("KEYHOLE_PASSPHRASE").is_none();
        let mut tries = 0;
        loop {
            tries += 1;
            let passphrase = passphrase()?;
            match Owner::load_key_store(store, &passphrase) {
                Ok(owner) => {
                    return Ok(Self {
                        owner,
                        store: store.to_owned(),
                        passphrase,
                    });
                }
                Err(keyhole_client::ClientError::KeyStore(
                    keyhole_client::core::keystore::KeyStoreError::WrongPassphrase,
                )) if asking && tries < TRIES => {
                    errln!(
                        "That passphrase does not open {}; try again.",
                        store.display()
                    );
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("opening {}", store.display()));
                }
            }
        }
    }

    /// The device's index of what it verified, beside its key store (made if missing).
    pub(crate) fn index(&self) -> anyhow::Result<keyhole_client::index::Index> {
        Ok(self
            .owner
            .open_index(&keyhole_client::index::beside(&self.store))?)
    }

    /// Writes the device's state back (after it learned keys or records).
    pub(crate) fn save(&self) -> anyhow::Result<()> {
        self.owner
            .save_key_store(
                &self.store,
                &self.passphrase,
                KdfParams::DEFAULT,
                &mut OsRng,
            )
            .with_context(|| format!("saving {}", self.store.display()))
    }

    /// Opens the key store and brings the device up to date with the account log (saving what
    /// it learned), then finds the named camera.
    pub(crate) async fn open_synced(
        store: &Path,
        camera: &str,
    ) -> anyhow::Result<(Self, CameraId)> {
        let device = Self::open_all_synced(store).await?;
        let camera = device.camera(camera)?;
        Ok((device, camera))
    }

    /// Opens the key store and brings the whole device up to date: the account log, roster,
    /// every camera's records and keys, and the comparison with the other devices' heads. The
    /// key store is written again only if the device learned something.
    pub(crate) async fn open_all_synced(store: &Path) -> anyhow::Result<Self> {
        let mut device = Self::open(store)?;
        if device.owner.sync().await? {
            device.save()?;
        }
        warn_damaged(&device.owner);
        Ok(device)
    }

    /// [`Device::open_all_synced`], or, when the server cannot be reached, the device as it
    /// last verified the account, with a notice saying so (already printed to stderr): for the
    /// commands that can answer from what the device holds.
    pub(crate) async fn open_synced_or_held(
        store: &Path,
    ) -> anyhow::Result<(Self, Option<String>)> {
        let mut device = Self::open(store)?;
        match device.owner.sync().await {
            Ok(learned) => {
                if learned {
                    device.save()?;
                }
                warn_damaged(&device.owner);
                Ok((device, None))
            }
            Err(keyhole_client::ClientError::Http(e)) if unreachable(&e) => {
                let notice = format!(
                    "OFFLINE: the server at {} cannot be reached ({}); shown as this device last \
                     verified it, which may be out of date",
                    device.owner.endpoint().url,
                    reason(&e)
                );
                errln!("{notice}");
                Ok((device, Some(notice)))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Verifies `camera`'s listing and saves the mark of the newest object verified, the
    /// camera's newest head and its retention floor (which verifying may move), so the next
    /// listing is checked against them.
    pub(crate) async fn verified(
        &mut self,
        camera: &CameraId,
    ) -> anyhow::Result<keyhole_client::core::report::Report> {
        self.verified_with(camera, false).await
    }

    /// [`Device::verified`]; with `full`, every object is downloaded and opened too, with a
    /// progress bar.
    pub(crate) async fn verified_with(
        &mut self,
        camera: &CameraId,
        full: bool,
    ) -> anyhow::Result<keyhole_client::core::report::Report> {
        let before = self.held(camera);
        let report = if full {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} objects downloaded and opened ({eta} left)",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let report = self
                .owner
                .verify_full_at(camera, keyhole_client::now(), &mut |done, listed| {
                    bar.set_length(listed as u64);
                    bar.set_position(done as u64);
                })
                .await;
            bar.finish_and_clear();
            report?
        } else {
            self.owner.verify(camera).await?
        };
        if self.held(camera) != before {
            self.save()?;
        }
        Ok(report)
    }

    /// What the key store keeps of `camera` that checking a listing may move: the mark of the
    /// newest object verified, the camera's newest head, its retention floor.
    pub(crate) fn held(&self, camera: &CameraId) -> impl PartialEq + use<> {
        (
            self.owner.verified_up_to(camera),
            self.owner.camera_head(camera),
            self.owner.retention(camera).map(|f| f.version),
        )
    }

    /// A camera named by id or by its name.
    pub(crate) fn camera(&self, named: &str) -> anyhow::Result<CameraId> {
        let cameras = self.owner.cameras();
        if let Some((id, ..)) = cameras
            .iter()
            .find(|(id, name, ..)| id.to_string() == named.to_lowercase() || name == named)
        {
            return Ok(*id);
        }
        bail!(
            "no camera {named:?} on this device; `keyhole cameras` lists them ({} known)",
            cameras.len()
        )
    }
}

/// Which server and account a new device joins, and the device's name (`init`, `recover`,
/// `join`).
#[derive(Debug, clap::Args)]
pub(crate) struct InitArgs {
    /// The server, e.g. <https://keyhole.example:8443>.
    #[arg(long)]
    pub(crate) server: String,
    /// SHA-256 fingerprint of the server's self-signed certificate (hex), as
    /// `keyhole-server fingerprint` prints it.
    #[arg(long)]
    pub(crate) pin: Option<String>,
    /// Account name.
    #[arg(long)]
    pub(crate) user: String,
    /// This device's name, as the account's device list will show it.
    #[arg(long, default_value = "this device")]
    pub(crate) device: String,
}

/// Refuses to overwrite a key store, and reads the server's address.
fn new_device(store: &Path, args: &InitArgs) -> anyhow::Result<Endpoint> {
    if store.exists() {
        bail!(
            "{} already holds this device's keys; use another --store for another account",
            store.display()
        );
    }
    let pin = match &args.pin {
        Some(hex_pin) => {
            let mut pin = [0u8; 32];
            hex::decode_to_slice(hex_pin.replace(':', ""), &mut pin)
                .context("--pin must be the 64 hex digits of the certificate's SHA-256")?;
            Some(pin)
        }
        None => None,
    };
    Ok(Endpoint {
        url: args.server.trim_end_matches('/').to_owned(),
        pin,
        allow_plain_http: false,
    })
}

fn new_passphrase() -> anyhow::Result<Zeroizing<String>> {
    let passphrase = new_secret("KEYHOLE_PASSPHRASE", "New key store passphrase: ")?;
    if passphrase.chars().count() < 8 {
        bail!("the key store passphrase must have at least 8 characters");
    }
    Ok(passphrase)
}

/// Says which key packages did not open at the last sync or recovery (they were skipped).
fn warn_damaged(owner: &Owner) {
    for damaged in owner.damaged_key_packages() {
        errln!(
            "warning: skipped {damaged}: it does not open on this device (altered on the server, \
             or not sealed to it). Everything else was opened; footage of that epoch opens here \
             only if another key package for it does."
        );
    }
}

pub(crate) async fn recover(store: &Path, args: InitArgs) -> anyhow::Result<()> {
    let endpoint = new_device(store, &args)?;
    let password = secret("KEYHOLE_PASSWORD", "Account password: ")?;
    let words = secret("KEYHOLE_RECOVERY_PHRASE", "Recovery phrase (12 words): ")?;
    let phrase = RecoveryPhrase::parse(&words).context("reading the recovery phrase")?;
    let passphrase = new_passphrase()?;
    let (owner, removed) = Owner::recover(
        &endpoint,
        &args.user,
        &password,
        &phrase,
        &args.device,
        now(),
        &mut OsRng,
    )
    .await
    .context("restoring the account")?;
    if let Some(parent) = store.parent() {
        std::fs::create_dir_all(parent)?;
    }
    owner.save_key_store(store, &passphrase, KdfParams::DEFAULT, &mut OsRng)?;
    warn_damaged(&owner);
    let cameras = owner.cameras();
    outln!(
        "Account {} restored on {:?}: {} camera(s) with their whole history.",
        args.user,
        args.device,
        cameras.len()
    );
    if !removed.is_empty() {
        outln!(
            "Removed from the account: {}. Every camera moves to a new key, so nothing recorded \
             from now on opens on them; add a device you still trust again with `keyhole join`.",
            removed.join(", ")
        );
    }
    outln!("Account code: {}", owner.account_code());
    outln!("Key store: {}", store.display());
    Ok(())
}

pub(crate) async fn init(
    store: &Path,
    args: InitArgs,
    phrase_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    let endpoint = new_device(store, &args)?;
    let password = new_secret("KEYHOLE_PASSWORD", "New account password: ")?;
    let passphrase = new_passphrase()?;
    let rng = &mut OsRng;
    let (owner, phrase) = Owner::create(
        &endpoint,
        &args.user,
        &password,
        &args.device,
        KdfParams::DEFAULT,
        now(),
        rng,
    )
    .await
    .context("setting up the account")?;
    if let Some(parent) = store.parent() {
        std::fs::create_dir_all(parent)?;
    }
    owner.save_key_store(store, &passphrase, KdfParams::DEFAULT, rng)?;
    let words = phrase.words();
    match &phrase_file {
        Some(path) => {
            let mut file = keyhole_client::private_file::create(path)
                .with_context(|| format!("writing the recovery phrase to {}", path.display()))?;
            writeln!(file, "{}", &*words)?;
            file.sync_all()?;
            outln!("Recovery phrase written to {} (mode 0600).", path.display());
        }
        None => {
            outln!("Your recovery phrase (shown once; write it down and keep it offline):\n");
            outln!("    {}\n", &*words);
            let list: Vec<&str> = words.split(' ').collect();
            let n = usize::try_from(rng.next_u32()).unwrap_or(0) % list.len();
            loop {
                let typed = secret(
                    "KEYHOLE_PHRASE_WORD",
                    &format!("Type word {} to confirm: ", n + 1),
                )?;
                if typed.trim().eq_ignore_ascii_case(list[n]) {
                    break;
                }
                errln!("That is not word {}; look again.", n + 1);
                if std::env::var_os("KEYHOLE_PHRASE_WORD").is_some() {
                    bail!("the recovery phrase was not confirmed");
                }
            }
        }
    }
    outln!(
        "Account {} set up; this device is {:?}.",
        args.user,
        args.device
    );
    outln!("Account code: {}", owner.account_code());
    outln!("Key store: {}", store.display());
    Ok(())
}

pub(crate) async fn pair(store: &Path, name: &str, wait: Duration, qr: bool) -> anyhow::Result<()> {
    let mut device = Device::open(store)?;
    let endpoint = device.owner.endpoint().clone();
    let rng = &mut OsRng;
    let code = device
        .owner
        .start_pairing(&endpoint.url, endpoint.pin, rng)
        .await?;
    let text = code.to_text();
    outln!("Pairing code (give it to the camera: `keyhole-camera pair -`):");
    outln!("{}", &*text);
    if qr {
        match qrcode::QrCode::new(text.as_bytes()) {
            Ok(qr) => {
                use qrcode::render::unicode::Dense1x2;
                let picture = qr
                    .render::<Dense1x2>()
                    .dark_color(Dense1x2::Light)
                    .light_color(Dense1x2::Dark)
                    .build();
                outln!("{picture}");
            }
            Err(e) => errln!("(no QR code: {e})"),
        }
    }
    outln!(
        "Account code: {} (the camera shows it once paired: compare the two; if they differ, \
         reset the camera and pair again)",
        device.owner.account_code()
    );
    outln!(
        "Waiting up to {} s for the camera to register…",
        wait.as_secs()
    );
    let deadline = std::time::Instant::now() + wait;
    let camera = loop {
        match device.owner.finish_pairing(&code, name, now(), rng).await {
            Ok(id) => break id,
            Err(keyhole_client::ClientError::Server { status: 404, .. })
                if std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e).context("pairing"),
        }
    };
    device.owner.sync().await?;
    device.save()?;
    outln!("Paired {name:?}: camera {camera}.");
    Ok(())
}

pub(crate) async fn cameras(store: &Path, json: bool) -> anyhow::Result<bool> {
    let (device, offline) = Device::open_synced_or_held(store).await?;
    if offline.is_some() {
        held_cameras(&device.owner, json)?;
        return Ok(false);
    }
    let cameras = device.owner.camera_statuses(keyhole_client::now()).await?;
    if json {
        let list: Vec<_> = cameras
            .iter()
            .map(|c| {
                serde_json::json!({
                    "camera_id": c.id.to_string(),
                    "name": c.name,
                    "epoch": c.epoch,
                    "removed": c.removed,
                    "last_sequence": c.latest.map(|l| l.sequence),
                    "last_captured": c.latest.map(|l| l.captured_at.to_string()),
                    "last_epoch": c.latest.map(|l| l.epoch),
                    "stale_epoch": c.stale_epoch,
                    "withheld_after": c.withheld_after,
                    "heard": c.heard.map(|t| t.to_string()),
                    "silent_since": c.silent_since.map(|t| t.to_string()),
                    "problem": c.problem,
                    "shared_by": device.owner.shared_by(&c.id),
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&list)?);
    } else if cameras.is_empty() {
        outln!("No cameras yet; pair one with `keyhole pair --name NAME`.");
    } else {
        for c in &cameras {
            let state = if c.removed {
                "removed, footage kept".to_owned()
            } else {
                format!("epoch {}", c.epoch)
            };
            let last = c.latest.map_or_else(
                || "nothing uploaded yet".to_owned(),
                |l| format!("newest #{} captured {}", l.sequence, l.captured_at),
            );
            let shared = match device.owner.shared_by(&c.id) {
                Some(owner) => format!("; shared by {owner}"),
                None => String::new(),
            };
            let heard = c.heard.map_or_else(
                || "; never heard from".to_owned(),
                |t| format!("; last heard {t}"),
            );
            outln!("{}  {}  ({state}; {last}{heard}{shared})", c.id, c.name);
            if let Some(since) = c.silent_since {
                outln!(
                    "  WARNING: silent since {since}, longer than the camera promised: it may be \
                     offline, or the server may be withholding what it sends"
                );
            }
            if c.stale_epoch {
                outln!(
                    "  WARNING: it still seals to an old epoch; the server may be withholding \
                     its newest record from it, so a revoked device could open its new clips"
                );
            }
            if let Some(seen) = c.withheld_after {
                outln!(
                    "  WARNING: this device verified #{seen}, newer than anything the server \
                     shows now: the server is withholding the camera's newest recordings"
                );
            }
            if let Some(problem) = &c.problem {
                outln!("  WARNING: {problem}");
            }
        }
    }
    Ok(!cameras.iter().any(|c| {
        c.stale_epoch
            || c.withheld_after.is_some()
            || c.silent_since.is_some()
            || c.problem.is_some()
    }))
}

pub(crate) async fn verify(store: &Path, camera: &str, full: bool) -> anyhow::Result<bool> {
    let (mut device, camera) = Device::open_synced(store, camera).await?;
    let report = device.verified_with(&camera, full).await?;
    // The index learns the verdicts too; what opening found stays until it is rebuilt.
    device.index()?.record(
        &camera,
        report.first_sequence,
        &report,
        keyhole_client::now(),
        full,
    )?;
    out!("{report}");
    Ok(report.is_clean())
}

pub(crate) async fn export(
    store: &Path,
    camera: &str,
    object: &str,
    out: &Path,
    force: bool,
) -> anyhow::Result<()> {
    if out.exists() && !force {
        bail!(
            "{} exists; pass --force to replace it, or choose another file",
            out.display()
        );
    }
    let (device, camera) = Device::open_synced(store, camera).await?;
    let object: ObjectId = object.parse().context("an object id is 32 hex digits")?;
    // An event the index holds: its span, cut from its segment.
    if let Some(held) = device.index()?.event(&object)? {
        return export_event(&device, &camera, &held.details, out).await;
    }
    // Decrypted footage: readable by this user only, created where nothing else was.
    let partial = keyhole_client::private_file::beside(out, ".partial");
    let progress = indicatif::ProgressBar::new_spinner().with_message(format!("{object}"));
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} decrypting {msg}: {bytes} ({bytes_per_sec})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let created = keyhole_client::private_file::create_afresh(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    let mut file = progress.wrap_write(std::io::BufWriter::new(created));
    let checked = device.owner.export(&camera, &object, &mut file).await;
    let flushed = file.flush();
    progress.finish_and_clear();
    match checked {
        Ok(Checked::Verified(opened)) if opened.header.kind == ObjectKind::Event => {
            flushed?;
            let details = std::fs::read(&partial).map(Zeroizing::new);
            std::fs::remove_file(&partial).ok();
            let details = EventDetails::decode(&details?).context("an event that verified")?;
            export_event(&device, &camera, &details, out).await
        }
        Ok(Checked::Verified(opened)) => {
            flushed?;
            std::fs::rename(&partial, out)?;
            outln!(
                "{}: {} bytes, verified (camera {camera}, sequence {}, captured {}).",
                out.display(),
                opened.plaintext_len,
                opened.header.sequence,
                opened.header.captured_at
            );
            Ok(())
        }
        Ok(Checked::Failed { reason, .. }) => {
            std::fs::remove_file(&partial).ok();
            // Every listing on this device shows it from now on.
            device
                .index()?
                .mark_played(&camera, &object, &reason.to_string())?;
            bail!("{object} did not verify, nothing was written: {reason}")
        }
        Err(e) => {
            std::fs::remove_file(&partial).ok();
            Err(e.into())
        }
    }
}

/// `keyhole export` of an event: its span, from the key frame before it, as an MP4 of its own.
async fn export_event(
    device: &Device,
    camera: &CameraId,
    event: &EventDetails,
    out: &Path,
) -> anyhow::Result<()> {
    let span = device.owner.event_span(camera, event).await?;
    let partial = keyhole_client::private_file::beside(out, ".partial");
    let mut file = keyhole_client::private_file::create_afresh(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    let written = file.write_all(&span.mp4).and_then(|()| file.sync_all());
    if let Err(e) = written {
        std::fs::remove_file(&partial).ok();
        return Err(e.into());
    }
    std::fs::rename(&partial, out)?;
    let seconds = |ms: u64| ms as f64 / 1000.0;
    outln!(
        "{}: the {} event of {}, verified: {} bytes from {:.1} s into its segment (the key frame \
         {:.1} s before the event) for {:.1} s. The whole segment: keyhole export {camera} {}",
        out.display(),
        format!("{:?}", event.kind).to_lowercase(),
        event.started_at,
        span.mp4.len(),
        seconds(span.starts_at_ms),
        seconds(span.event_at_ms.saturating_sub(span.starts_at_ms)),
        seconds(u64::from(event.duration_ms)),
        span.clip
    );
    Ok(())
}

/// `keyhole live`: false (exit 1) when the session was cut off rather than ended.
pub(crate) async fn live(
    store: &Path,
    camera: &str,
    out: &Path,
    seconds: Option<u64>,
) -> anyhow::Result<bool> {
    let (device, camera) = Device::open_synced(store, camera).await?;
    let mut sink: Box<dyn Write + Send> = if out == Path::new("-") {
        Box::new(std::io::stdout())
    } else {
        Box::new(std::io::BufWriter::new(std::fs::File::create(out)?))
    };
    errln!("Asking the camera for live view…");
    let outcome = match device
        .owner
        .watch_live(&camera, 60, seconds.map(Duration::from_secs), &mut sink)
        .await
    {
        // The player reading the stream was closed: the viewer stopped watching.
        Err(keyhole_client::ClientError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            return Ok(true);
        }
        other => other?,
    };
    sink.flush()?;
    errln!(
        "{} frames, {} bytes of video ({} skipped){}{}",
        outcome.frames,
        outcome.bytes,
        outcome.skipped,
        outcome.lag_ms.map_or_else(String::new, |lag| format!(
            "; at most {lag} ms behind the camera"
        )),
        if outcome.ended {
            "; the camera ended the session"
        } else {
            ""
        }
    );
    if outcome.delayed() {
        errln!(
            "WARNING: the live view fell more than {} s behind the camera: the server or the \
             network held it back. It was the camera's, but not live.",
            keyhole_client::owner::LIVE_LAG_LIMIT_MS / 1000
        );
    }
    if outcome.cut {
        errln!(
            "WARNING: the live view was cut off before the camera ended it: the server or the \
             network stopped passing it on. What was shown is authentic; what came after is \
             missing."
        );
    }
    Ok(!outcome.cut && !outcome.delayed())
}

/// `keyhole talk`: says the input through the camera's speaker.
pub(crate) async fn talk(
    store: &Path,
    camera: &str,
    input: &Path,
    rate: u32,
) -> anyhow::Result<()> {
    let (device, camera) = Device::open_synced(store, camera).await?;
    let mut pcm: Box<dyn tokio::io::AsyncRead + Unpin + Send> = if input == Path::new("-") {
        Box::new(tokio::io::stdin())
    } else {
        Box::new(
            tokio::fs::File::open(input)
                .await
                .with_context(|| format!("opening {}", input.display()))?,
        )
    };
    errln!("Asking the camera for live view to talk through it…");
    let outcome = device.owner.talk(&camera, &mut pcm, rate, 60).await?;
    errln!(
        "Said {:.1} s ({} bytes sealed) through the camera; it heard the stream out.",
        outcome.packets as f64 * 0.02,
        outcome.bytes
    );
    Ok(())
}

/// `keyhole devices`: the account's devices, and when each other one last reported the account
/// log head it verified.
/// The cameras as this device holds them, for when the server cannot be reached: names, keys'
/// epochs and when each last signed its head (the newest this device verified).
fn held_cameras(owner: &keyhole_client::owner::Owner, json: bool) -> anyhow::Result<()> {
    let cameras = owner.cameras();
    if json {
        let list: Vec<_> = cameras
            .iter()
            .map(|(id, name, epoch, removed)| {
                serde_json::json!({
                    "camera_id": id.to_string(),
                    "name": name,
                    "epoch": epoch,
                    "removed": removed,
                    "heard": owner.camera_head(id).map(|h| h.clock.to_string()),
                    "shared_by": owner.shared_by(id),
                    "offline": true,
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    for (id, name, epoch, removed) in &cameras {
        let state = if *removed {
            "removed".to_owned()
        } else {
            format!("epoch {epoch}")
        };
        let heard = owner.camera_head(id).map_or_else(
            || "never heard from".to_owned(),
            |h| format!("last heard {}", h.clock),
        );
        outln!("{id}  {name}  ({state}; {heard}; offline)");
    }
    Ok(())
}

pub(crate) async fn devices(store: &Path, json: bool) -> anyhow::Result<()> {
    let (device, _) = Device::open_synced_or_held(store).await?;
    let this = device.owner.device_id();
    let devices = device.owner.devices();
    let heard = device.owner.devices_heard();
    let heard_from = |id: &DeviceId| heard.iter().find(|(d, _)| d == id).and_then(|(_, t)| *t);
    if json {
        let list: Vec<_> = devices
            .iter()
            .map(|(id, name, added)| {
                serde_json::json!({
                    "device_id": id.to_string(),
                    "name": name,
                    "added_at": added.to_string(),
                    "this_device": *id == this,
                    "log_verified_at": heard_from(id).map(|t| t.to_string()),
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        for (id, name, added) in devices {
            let mark = if id == this {
                "  (this device)".to_owned()
            } else {
                match heard_from(&id) {
                    Some(t) => format!("  (log last verified {t})"),
                    None => "  (has not reported the log it verified yet)".to_owned(),
                }
            };
            outln!("{id}  {name}  added {added}{mark}");
        }
    }
    Ok(())
}

/// What `keyhole revoke` does about the account password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PasswordChoice {
    /// Change it.
    Change,
    /// Leave it.
    Keep,
    /// Ask on the terminal (and leave it where there is none to ask on).
    Ask,
}

pub(crate) async fn revoke(
    store: &Path,
    named: &str,
    password: PasswordChoice,
) -> anyhow::Result<()> {
    let mut device = Device::open(store)?;
    let Some((id, name, _)) = device
        .owner
        .devices()
        .into_iter()
        .find(|(id, name, _)| id.to_string() == named.to_lowercase() || name == named)
    else {
        bail!("no device {named:?} in the account; `keyhole devices` lists them");
    };
    let epochs = device.owner.revoke_device(id, now(), &mut OsRng).await?;
    device.save()?;
    outln!("Revoked {name:?} ({id}): its credentials no longer work.");
    for (camera, epoch) in epochs {
        outln!("  camera {camera}: new epoch {epoch}; nothing recorded from now on opens on it");
    }
    let change = match password {
        PasswordChoice::Change => true,
        PasswordChoice::Keep => false,
        PasswordChoice::Ask if std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
            err!(
                "Whoever holds {name:?} may know the account password, which lets a new device \
                 ask to join. Change it now? [y/N] "
            );
            std::io::stderr().flush()?;
            let mut answer = String::new();
            std::io::stdin().read_line(&mut answer)?;
            matches!(answer.trim(), "y" | "Y" | "yes")
        }
        PasswordChoice::Ask => false,
    };
    if change {
        change_password(&device).await?;
    } else {
        outln!(
            "The account password is unchanged; `keyhole password` changes it if {name:?}'s \
             holder may know it."
        );
    }
    Ok(())
}

/// Asks for a new password (twice, or KEYHOLE_NEW_PASSWORD) and sets it, proven by this device.
async fn change_password(device: &Device) -> anyhow::Result<()> {
    let new = new_secret("KEYHOLE_NEW_PASSWORD", "New account password: ")?;
    device
        .owner
        .change_password(&new)
        .await
        .context("changing the account password")?;
    outln!("The account password is changed.");
    Ok(())
}

pub(crate) async fn password(store: &Path) -> anyhow::Result<()> {
    change_password(&Device::open(store)?).await
}

pub(crate) async fn login(store: &Path, user: Option<&str>) -> anyhow::Result<()> {
    let mut device = Device::open(store)?;
    match device.owner.log_in_with_device_key().await {
        Ok(()) => {}
        Err(keyhole_client::ClientError::Server { code, .. }) if code == "not_found" => {
            let Some(user) = user else {
                bail!(
                    "the server says the account's device list does not list this device: it \
                     was removed. `keyhole login --user <account>` reads the account log with \
                     the password to show which device removed it"
                );
            };
            let password = secret("KEYHOLE_PASSWORD", "Account password: ")?;
            device
                .owner
                .log_in_with_password(user, &password)
                .await
                .context("logging in with the password to read the account log")?;
            device.owner.sync().await?;
            bail!(
                "the account log still lists this device, yet the server refused to log it in \
                 with its key: the server is not answering truthfully"
            );
        }
        Err(e) => return Err(anyhow::Error::new(e).context("logging in with this device's key")),
    }
    device.save()?;
    outln!(
        "This device ({}) has a new credential, issued against its own key.",
        device.owner.device_id()
    );
    Ok(())
}

/// What to do next, for errors a person can act on.
/// Whether `e` means the server could not be reached at all (rather than answering badly).
pub(crate) fn unreachable(e: &reqwest::Error) -> bool {
    e.is_connect() || e.is_timeout()
}

/// Why the server could not be reached, in a few words.
pub(crate) fn reason(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "no answer in time"
    } else {
        "the connection failed"
    }
}

pub(crate) fn hint(e: &anyhow::Error) -> Option<&'static str> {
    if e.chain().any(|c| {
        matches!(c.downcast_ref(), Some(keyhole_client::ClientError::Http(e)) if unreachable(e))
    }) {
        return Some(
            "the server cannot be reached: check that it is running and that this device is \
             online, then try again; nothing was changed",
        );
    }
    let server = e.chain().find_map(|c| match c.downcast_ref() {
        Some(keyhole_client::ClientError::Server { status, code, .. }) => {
            Some((*status, code.as_str()))
        }
        _ => None,
    })?;
    match server {
        (401, _) => Some(
            "the server no longer takes this device's credential; `keyhole login` gets a new one \
             with this device's key, if the account still lists it",
        ),
        (_, "not_enrolled") => Some(
            "the account's device list does not list this device: it was removed (`keyhole \
             devices` on another device shows the list), or is not approved yet",
        ),
        _ => None,
    }
}

/// Asks the user to type `expected` to go on, unless `yes`.
fn confirm(question: &str, expected: &str, yes: bool) -> anyhow::Result<()> {
    if yes || typed(question, expected)? {
        return Ok(());
    }
    bail!("not confirmed; nothing was changed")
}

/// Whether the user typed `expected` in answer to `question`.
fn typed(question: &str, expected: &str) -> anyhow::Result<bool> {
    err!("{question} Type {expected:?} to confirm: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(answer.trim() == expected)
}

const CODES_DIFFER: &str = "the codes differ, so nothing was enrolled. Someone (possibly the \
     server) is between the two devices; do not retry until you know why";

pub(crate) async fn join(store: &Path, args: InitArgs) -> anyhow::Result<()> {
    let endpoint = new_device(store, &args)?;
    let password = secret("KEYHOLE_PASSWORD", "Account password: ")?;
    let passphrase = new_passphrase()?;
    let rng = &mut OsRng;
    let mut request =
        keyhole_client::JoinRequest::start(&endpoint, &args.user, &password, &args.device, rng)
            .await
            .context("asking to join the account")?;
    outln!(
        "Asked to join account {} as {:?} (device {}).",
        args.user,
        args.device,
        request.device_id()
    );
    outln!("On one of the account's enrolled devices, run `keyhole approve`.");
    outln!("Waiting for it (up to 10 minutes)…");
    let code = request.exchange().await?;
    outln!("Code: {code}");
    if !typed("Does the approving device show exactly this code?", "yes")? {
        request.cancel().await?;
        bail!(CODES_DIFFER);
    }
    outln!("Waiting for the other device to confirm too…");
    let owner = request.finish(rng).await.context("joining the account")?;
    if let Some(parent) = store.parent() {
        std::fs::create_dir_all(parent)?;
    }
    owner.save_key_store(store, &passphrase, KdfParams::DEFAULT, rng)?;
    outln!(
        "This device is enrolled in account {} as {:?}: {} camera(s) with their whole history.",
        args.user,
        args.device,
        owner.cameras().len()
    );
    outln!("Account code: {}", owner.account_code());
    outln!("Key store: {}", store.display());
    Ok(())
}

pub(crate) async fn approve(
    store: &Path,
    named: Option<&str>,
    wait: Duration,
) -> anyhow::Result<()> {
    let mut device = Device::open(store)?;
    let deadline = std::time::Instant::now() + wait;
    let pending = loop {
        let mut pending = device.owner.pending_enrollments().await?;
        if let Some(named) = named {
            pending.retain(|p| {
                p.enrollment_id == named.to_lowercase()
                    || p.request.device_id.to_string() == named.to_lowercase()
                    || p.request.name == named
            });
        }
        match pending.len() {
            1 => break pending.remove(0),
            0 if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            0 => bail!("no device is waiting to join; run `keyhole join` on it first"),
            _ => {
                for p in &pending {
                    errln!(
                        "  {}  {:?} (device {})",
                        p.enrollment_id,
                        p.request.name,
                        p.request.device_id
                    );
                }
                bail!(
                    "{} devices are waiting; name one: `keyhole approve <id or name>`",
                    pending.len()
                );
            }
        }
    };
    let rng = &mut OsRng;
    let approval = device.owner.answer_enrollment(&pending, rng).await?;
    let (id, name) = approval.device();
    outln!("Device {name:?} ({id}) asks to join this account.");
    outln!("Code: {}", approval.code());
    if !typed("Does the joining device show exactly this code?", "yes")? {
        device
            .owner
            .reject_enrollment(&pending.enrollment_id)
            .await?;
        bail!(CODES_DIFFER);
    }
    let name = name.to_owned();
    device
        .owner
        .approve_enrollment(approval, now(), rng)
        .await?;
    device.save()?;
    outln!("Enrolled {name:?} ({id}); it now opens every camera's whole history.");
    Ok(())
}

pub(crate) async fn remove(
    store: &Path,
    camera: &str,
    keep_footage: bool,
    yes: bool,
) -> anyhow::Result<()> {
    let mut device = Device::open(store)?;
    let id = device.camera(camera)?;
    let name = device
        .owner
        .cameras()
        .into_iter()
        .find(|(c, ..)| *c == id)
        .map(|(_, name, ..)| name)
        .unwrap_or_default();
    let what = if keep_footage {
        "Its recordings stay and keep opening on your devices."
    } else {
        "Its recordings, records and keys are DELETED for good."
    };
    confirm(&format!("Remove camera {name:?}? {what}"), &name, yes)?;
    let summary = device.owner.remove_camera(&id, keep_footage, now()).await?;
    device.save()?;
    outln!(
        "Removed {name:?} ({id}); footage {}: {} object(s), {} bytes deleted.",
        if keep_footage { "kept" } else { "deleted" },
        summary["objects_deleted"],
        summary["bytes_deleted"]
    );
    outln!(
        "Reset the camera (`keyhole-camera reset`) before it is paired again, here or by its next owner."
    );
    Ok(())
}

pub(crate) async fn audit(store: &Path, json: bool) -> anyhow::Result<bool> {
    let device = Device::open(store)?;
    let entries = device.owner.audit_log().await?;
    let foreign = entries.iter().filter(|(_, who)| who.is_none()).count();
    if json {
        let list: Vec<_> = entries
            .iter()
            .map(|(entry, who)| {
                let mut entry = entry.clone();
                entry["by"] = who.clone().map_or(serde_json::Value::Null, Into::into);
                entry["yours"] = who.is_some().into();
                entry["words"] = device.owner.audit_in_words(&entry).into();
                entry
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        for (entry, who) in &entries {
            let at = entry["at"]
                .as_u64()
                .map_or_else(String::new, |ms| Timestamp(ms).to_string());
            let by = who.clone().unwrap_or_else(|| {
                format!("NOT YOURS: {}", entry["actor"].as_str().unwrap_or("?"))
            });
            let mark = if who.is_none() { "!" } else { " " };
            outln!(
                "{mark} {at}  {}  ({by})",
                crate::out::printable(&device.owner.audit_in_words(entry))
            );
        }
        if foreign > 0 {
            outln!(
                "\n{foreign} change(s) were not made by this account's devices or cameras (marked !)."
            );
        }
    }
    Ok(true)
}

/// `keyhole ui`: brings the device up to date (if the server can be reached), then serves the
/// web viewer on 127.0.0.1 until Ctrl-C.
pub(crate) async fn ui(store: &Path, port: u16, open_browser: bool) -> anyhow::Result<()> {
    // Out of reach, the viewer still shows what the device's index holds, saying as of when.
    let (device, _) = Device::open_synced_or_held(store).await?;
    let index = device.index()?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("listening on 127.0.0.1:{port}"))?;
    let entry = keyhole_client::ui::Entry::new(listener.local_addr()?.port(), &mut OsRng);
    let link = entry.link();
    outln!("keyhole ui: {}", link.as_str());
    outln!(
        "(only this machine can reach it; the link opens the viewer once, in one browser; \
         Ctrl-C stops)"
    );
    // Kept until the viewer stops: the page that sends the browser on.
    let _opener = if open_browser {
        open_in_browser(&link)
            .inspect_err(|e| errln!("(could not open a browser: {e}; open the link above)"))
            .ok()
    } else {
        None
    };
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let Device {
        owner,
        store,
        passphrase,
    } = device;
    let persist: keyhole_client::ui::Persist = Box::new(move |owner: &Owner| {
        owner.save_key_store(&store, &passphrase, KdfParams::DEFAULT, &mut OsRng)
    });
    keyhole_client::ui::serve(owner, index, persist, listener, entry, stop).await?;
    Ok(())
}

/// Opens `link` in the desktop's browser without putting its token in any process's arguments:
/// `xdg-open` gets a page, readable by this user only, that sends the browser on to the link.
fn open_in_browser(link: &str) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new().prefix("keyhole-ui-").tempdir()?;
    let page = dir.path().join("open.html");
    let mut file = keyhole_client::private_file::create(&page)?;
    write!(
        file,
        "<!doctype html><meta http-equiv=\"refresh\" content=\"0;url={link}\">\
         <title>Keyhole</title><a href=\"{link}\">Open the Keyhole viewer</a>"
    )?;
    file.sync_all()?;
    std::process::Command::new("xdg-open")
        .arg(&page)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    Ok(dir)
}

/// `keyhole code`: this account's code, for others to compare before sharing.
pub(crate) fn code(store: &Path) -> anyhow::Result<()> {
    let device = Device::open(store)?;
    outln!("Account code: {}", device.owner.account_code());
    Ok(())
}

/// `keyhole refuse-shares`: stops accepting shares from another account.
pub(crate) async fn refuse_shares(store: &Path, from: &str) -> anyhow::Result<()> {
    let mut device = Device::open(store)?;
    device.owner.refuse_shares_from(from).await?;
    device.save()?;
    outln!(
        "Shares from {from} are no longer accepted: {from} can no longer see this account's \
         devices or share with it, and its cameras are forgotten here (your other devices \
         forget them when they next sync)."
    );
    Ok(())
}

/// `keyhole accept-shares`: pins another account by its code and lets it share with this one.
pub(crate) async fn accept_shares(store: &Path, from: &str, code: &str) -> anyhow::Result<()> {
    let mut device = Device::open(store)?;
    device.owner.accept_shares_from(from, code).await?;
    device.save()?;
    outln!(
        "Account code of {from} checked: this account's devices open the cameras {from} shares \
         with it (the others learn it when they next sync)."
    );
    Ok(())
}

/// `keyhole share`: shares a camera (`None`: every active camera of the account) with another
/// account, optionally for a number of days.
pub(crate) async fn share(
    store: &Path,
    camera: Option<&str>,
    with: &str,
    code: &str,
    days: Option<u64>,
) -> anyhow::Result<()> {
    let mut device = Device::open_all_synced(store).await?;
    let cameras: Vec<CameraId> = match camera {
        Some(named) => vec![device.camera(named)?],
        None => device
            .owner
            .cameras()
            .into_iter()
            .filter(|c| !c.3 && device.owner.shared_by(&c.0).is_none())
            .map(|c| c.0)
            .collect(),
    };
    if cameras.is_empty() {
        bail!("this account has no camera to share; pair one with `keyhole pair`");
    }
    let now = now();
    let expires =
        days.map(|d| Timestamp(now.0.saturating_add(d.saturating_mul(24 * 60 * 60 * 1000))));
    let until = expires.map_or_else(
        || "until you withdraw it".to_owned(),
        |t| format!("until {t}"),
    );
    for camera in cameras {
        let shared = device
            .owner
            .share_camera(&camera, with, code, expires, now, &mut OsRng)
            .await;
        // What was shared so far is kept, even if a later camera fails.
        device.save()?;
        shared?;
        outln!(
            "Shared camera {camera} with {with} ({until}): its devices open what the camera \
             records from its current key on; they cannot remove, pair or share it."
        );
    }
    Ok(())
}

/// `keyhole unshare`: withdraws a share, with a new epoch for the camera.
pub(crate) async fn unshare(store: &Path, camera: &str, with: &str) -> anyhow::Result<()> {
    let mut device = Device::open_all_synced(store).await?;
    let camera = device.camera(camera)?;
    let epoch = device
        .owner
        .unshare_camera(&camera, with, now(), &mut OsRng)
        .await?;
    device.save()?;
    outln!(
        "Withdrew camera {camera} from {with}: the server no longer serves it to {with}, and \
         nothing recorded from now on (epoch {epoch}) opens for it."
    );
    Ok(())
}

/// `keyhole retention`: how much of a camera's footage is kept, and setting it.
pub(crate) async fn retention(store: &Path, camera: &str, days: Option<u32>) -> anyhow::Result<()> {
    let (mut device, camera) = Device::open_synced(store, camera).await?;
    if let Some(days) = days {
        device.owner.set_retention(&camera, days, now()).await?;
        device.save()?;
        // Verifying moves the floor past what has aged out under the new policy.
        device.verified(&camera).await?;
    }
    let name = device
        .owner
        .cameras()
        .into_iter()
        .find_map(|(id, name, ..)| (id == camera).then_some(name))
        .unwrap_or_else(|| camera.to_string());
    match device.owner.retention(&camera) {
        Some(f) if f.max_age_days > 0 => outln!(
            "{name} keeps {} days of footage. Objects before sequence {} may be deleted: the \
             server deletes them at its next sweep, and reports start there.",
            f.max_age_days,
            f.keep_from
        ),
        Some(f) if f.keep_from > 1 => outln!(
            "{name} keeps everything from now on; objects before sequence {} were let go.",
            f.keep_from
        ),
        _ => outln!("{name} keeps everything (no retention set)."),
    }
    Ok(())
}

/// `keyhole shares`: what this account shares, and what is shared with it.
pub(crate) async fn shares(store: &Path, json: bool) -> anyhow::Result<()> {
    let device = Device::open_all_synced(store).await?;
    let owner = &device.owner;
    let name = |id: &CameraId| {
        owner
            .cameras()
            .into_iter()
            .find(|c| c.0 == *id)
            .map_or_else(String::new, |c| c.1)
    };
    let outgoing = owner.shares();
    let incoming: Vec<(CameraId, String)> = owner
        .cameras()
        .into_iter()
        .filter_map(|c| Some((c.0, owner.shared_by(&c.0)?)))
        .collect();
    if json {
        let value = serde_json::json!({
            "shared_with_others": outgoing.iter().map(|(id, members)| serde_json::json!({
                "camera_id": id.to_string(),
                "name": name(id),
                "members": members.iter().map(|(m, until)| serde_json::json!({
                    "username": m,
                    "expires_at": until.map(|t| t.to_string()),
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "shared_with_this_account": incoming.iter().map(|(id, by)| serde_json::json!({
                "camera_id": id.to_string(),
                "name": name(id),
                "owner": by,
            })).collect::<Vec<_>>(),
        });
        outln!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    if outgoing.is_empty() && incoming.is_empty() {
        outln!(
            "Nothing is shared; `keyhole share CAMERA --with USER --code CODE` shares a camera."
        );
    }
    for (id, members) in &outgoing {
        let list: Vec<String> = members
            .iter()
            .map(|(m, until)| match until {
                Some(t) => format!("{m} until {t}"),
                None => m.clone(),
            })
            .collect();
        outln!("{id}  {}  shared with {}", name(id), list.join(", "));
    }
    for (id, by) in &incoming {
        outln!("{id}  {}  shared with this account by {by}", name(id));
    }
    Ok(())
}

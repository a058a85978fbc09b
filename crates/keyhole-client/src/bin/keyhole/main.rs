//! `keyhole`: the owner's command line.
// Doc comments below are the command-line help text, where backticks would show.
#![allow(clippy::doc_markdown)]

#[macro_use]
mod out;

mod commands;
mod desktop;
mod events;
mod push;
mod watch;
mod when;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Debug, Subcommand)]
enum PushAction {
    /// Print the server's application server key (VAPID), to make a subscription with.
    Key,
    /// Register a push subscription, as its push stack writes it (a browser's
    /// `PushSubscription.toJSON()`, a `UnifiedPush` distributor's endpoint and keys):
    /// {"endpoint": URL, "keys": {"p256dh": KEY, "auth": SECRET}}. Replaces any before.
    Register {
        /// The subscription's JSON file, or `-` for standard input.
        subscription: PathBuf,
    },
    /// Stop the pushes to this device.
    Unregister,
}

/// Keyhole: end-to-end encrypted home video security, from the owner's side.
///
/// Secrets are asked for on the terminal, or taken from KEYHOLE_PASSWORD (the account
/// password) and KEYHOLE_PASSPHRASE (the key store passphrase) for scripts.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// This device's key store (default: $XDG_CONFIG_HOME/keyhole/device.keys).
    #[arg(long, global = true, env = "KEYHOLE_STORE")]
    store: Option<PathBuf>,
    /// Print JSON (cameras, events; one line per event for watch).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Set up a new account with this device as its first: makes the account key, this device's
    /// keys, the signed device list and the recovery phrase (shown once, then confirmed); the
    /// account key goes only into the phrase-sealed backup, and this device's keys into the key
    /// store under a passphrase.
    Init {
        #[command(flatten)]
        account: commands::InitArgs,
        /// Write the recovery phrase to this new file (mode 0600) instead of showing it.
        #[arg(long)]
        phrase_file: Option<PathBuf>,
    },
    /// Restore the account on this device after losing every other one, or take it back from one
    /// turned against you: log in, open the recovery backup with the recovery phrase (asked for,
    /// or KEYHOLE_RECOVERY_PHRASE), enroll this device alone (every other device is removed), and
    /// recover every camera's keys for its whole history.
    Recover {
        #[command(flatten)]
        account: commands::InitArgs,
    },
    /// Join an existing account from this new device, approved by one of its enrolled devices
    /// (`keyhole approve` there): both show a six-digit code, and you confirm on each that they
    /// match. This device is then in the account's device list and holds every camera's whole
    /// history.
    Join {
        #[command(flatten)]
        account: commands::InitArgs,
    },
    /// Approve a device waiting to join the account (`keyhole join` there): shows the code to
    /// compare with it, and enrolls it once you confirm.
    Approve {
        /// The waiting device's name or id, or the enrollment id, when several wait.
        device: Option<String>,
        /// How long to wait for a device to ask, in seconds.
        #[arg(long, default_value_t = 120)]
        wait: u64,
    },
    /// Pair a camera: prints a pairing code for it, waits for it to register, checks its key
    /// with the code's secret, and signs its record.
    Pair {
        /// The camera's name.
        #[arg(long)]
        name: String,
        /// How long to wait for the camera, in seconds.
        #[arg(long, default_value_t = 600)]
        wait: u64,
        /// Do not draw the code as a QR code.
        #[arg(long)]
        no_qr: bool,
    },
    /// List the cameras this device holds keys for, with each one's last upload. Exits 1 if a
    /// camera still seals to an old epoch (its newest record withheld from it).
    Cameras,
    /// List the account's enrolled devices, and when each other one last reported the account
    /// history it verified (a device long silent while in use may be shown another history).
    Devices,
    /// Show this account's code, for people you share with to compare.
    Code,
    /// Accept cameras another account shares with yours, after comparing its account code
    /// (`keyhole code` there) with its owner, out of band. Until then it can neither see your
    /// devices nor share with you. Your other devices learn it when they next sync.
    AcceptShares {
        /// The other account's user name.
        #[arg(long)]
        from: String,
        /// Its account code, as its owner read it to you.
        #[arg(long)]
        code: String,
    },
    /// Stop accepting shares from another account: it can no longer see your devices or share
    /// with you, and your devices forget the cameras it shared (their keys included).
    RefuseShares {
        /// The other account's user name.
        #[arg(long)]
        from: String,
    },
    /// Share a camera, or all of them, with another account (which ran `keyhole accept-shares`
    /// for yours): its devices, as its own signed device list names them, get the camera's
    /// current key; they can list, play and watch live, not remove, pair or share. Compare its
    /// account code first.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["camera", "all"])))]
    Share {
        /// Camera id or name.
        camera: Option<String>,
        /// Every camera of this account (that is not removed).
        #[arg(long)]
        all: bool,
        /// The other account's user name.
        #[arg(long)]
        with: String,
        /// Its account code, as its owner read it to you.
        #[arg(long)]
        code: String,
        /// End the share after this many days [default: until withdrawn].
        #[arg(long)]
        days: Option<u64>,
    },
    /// Withdraw a share: the server stops serving the camera to that account, and a new key
    /// means nothing recorded afterwards opens for it.
    Unshare {
        /// Camera id or name.
        camera: String,
        /// The other account's user name.
        #[arg(long)]
        with: String,
    },
    /// List the cameras this account shares, and those shared with it.
    Shares,
    /// Show or set how many days of a camera's footage to keep. Older footage is deleted only
    /// below a floor this account's devices sign; reports start there, so it never shows as
    /// missing, and anything else the server deletes always does.
    Retention {
        /// Camera id or name.
        camera: String,
        /// Keep this many days (0: keep everything). Without it, show the current setting.
        #[arg(long)]
        days: Option<u32>,
    },
    /// Read the account's audit log; changes not made by this account's devices or cameras
    /// (the server, an unknown device, a revoked one after its revocation) are marked.
    Audit,
    /// Revoke a device (lost or sold): a new device list without it, its credentials refused,
    /// and a new key for every camera, so nothing recorded afterwards opens on it.
    ///
    /// The removed device's holder may know the account password, which lets a new device ask to
    /// join: you are offered to change it (or pass --change-password or --keep-password).
    Revoke {
        /// Device id or name.
        device: String,
        /// Change the account password afterwards without asking (the new one is asked for, or
        /// taken from KEYHOLE_NEW_PASSWORD).
        #[arg(long, conflicts_with = "keep_password")]
        change_password: bool,
        /// Leave the account password as it is, without asking.
        #[arg(long)]
        keep_password: bool,
    },
    /// Change the account password (asked for twice, or taken from KEYHOLE_NEW_PASSWORD). The
    /// password only lets a new device ask to join or recover; this device proves the change
    /// with its own key, so the old password is not needed.
    Password,
    /// Get this device a new credential with its own key, when the server no longer takes the
    /// one it had (revoked from another device, or lost). Only a device in the account's
    /// device list gets one; the password is not used.
    Login {
        /// If the device list no longer lists this device: log in with this account's password
        /// instead (asked for, or KEYHOLE_PASSWORD), only to read the account log and show which
        /// device removed this one.
        #[arg(long)]
        user: Option<String>,
    },
    /// Remove a camera from the account, keeping or deleting its footage; also the first step
    /// of transferring a camera to someone else (reset it, then they pair it).
    #[command(group(clap::ArgGroup::new("footage").required(true).args(["keep_footage", "delete_footage"])))]
    Remove {
        /// Camera id or name.
        camera: String,
        /// Keep its recordings (they keep opening on your devices).
        #[arg(long)]
        keep_footage: bool,
        /// Delete its recordings, records and keys for good.
        #[arg(long)]
        delete_footage: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// List events, newest first, verified and opened on this device, optionally saving their
    /// thumbnails. Each event is downloaded once and kept sealed in this device's index (beside
    /// the key store), so a listing costs only what is new; with the server out of reach the
    /// index answers, saying as of when. Exits 1 if anything did not verify.
    Events {
        /// Camera id or name (every camera if none is named).
        camera: Option<String>,
        /// Another camera to list (may be repeated).
        #[arg(long = "camera", value_name = "CAMERA")]
        cameras: Vec<String>,
        /// Only events from this time on: a day (2026-12-07), a moment in UTC
        /// (2026-12-07T18:30:00Z), or how long ago (90s, 30m, 2h, 7d).
        #[arg(long)]
        since: Option<String>,
        /// Only events before this time (same forms as --since).
        #[arg(long)]
        until: Option<String>,
        /// At most this many events.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Save each event's thumbnail as EVENT-ID.jpg in this folder.
        #[arg(long)]
        thumbnails: Option<PathBuf>,
    },
    /// Follow the cameras and print each new event as it arrives, verified and opened on this
    /// device: a line of text each, or a JSON line with --json. The server announces when a
    /// camera has something new (and nothing more); the device then fetches and verifies it.
    /// Keeps going when the server goes away, and catches up when it is back. Where a desktop
    /// notification service runs, each event is also shown there with its thumbnail. Stop
    /// with Ctrl-C.
    Watch {
        /// Camera ids or names (every camera, those added later too, if none is named).
        cameras: Vec<String>,
        /// Save each event's thumbnail as EVENT-ID.jpg in this folder.
        #[arg(long)]
        thumbnails: Option<PathBuf>,
        /// Run this shell command for each event, with the event as one JSON line on its
        /// standard input (for a home-automation system, say).
        #[arg(long, value_name = "COMMAND")]
        exec: Option<String>,
        /// Show no desktop notifications (shown by default, with the decrypted thumbnail,
        /// where a freedesktop notification service runs).
        #[arg(long)]
        no_notify: bool,
    },
    /// Have the server wake this device through Web Push for each event of its cameras (a
    /// content-free wake-up, encrypted to the device's push subscription; the device then
    /// fetches and verifies the event itself).
    Push {
        #[command(subcommand)]
        action: PushAction,
    },
    /// Verify everything the server holds for a camera and print the report: every object
    /// verified, or exactly what was tampered, swapped, replayed or missing. The chain is
    /// checked from each object's signed summary, without downloading video; `--full` also
    /// downloads and opens every object, which finds altered video. Exits 1 if not clean.
    Verify {
        /// Camera id or name.
        camera: String,
        /// Download and open every object too (as much data as the camera has stored).
        #[arg(long)]
        full: bool,
    },
    /// Decrypt one clip or event's span (MP4) to a file; nothing is written unless it verifies.
    Export {
        /// Camera id or name.
        camera: String,
        /// The object id, from `keyhole events`: an event (its span, cut from its segment
        /// from the key frame before it) or a clip (the whole segment).
        object: String,
        /// Output file, created readable by this user only.
        #[arg(long, short)]
        output: PathBuf,
        /// Replace the output file if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Watch a camera live: the pictures and sound, as fragmented MP4, go to a file, or to `-`
    /// for a player (`keyhole live Porch -o - | ffplay -`). Only frames the camera's signed
    /// checkpoints vouch for are written, once one names this request. Exits 1 if the live view
    /// was cut off before the camera ended it, or fell more than 5 s behind.
    Live {
        /// Camera id or name.
        camera: String,
        /// Output file, or `-` for standard output.
        #[arg(long, short)]
        output: PathBuf,
        /// Stop after this many seconds.
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// Talk through a camera's speaker: reads raw signed 16-bit little-endian mono PCM (from a
    /// file, or standard input for `-`, as `arecord -t raw -f S16_LE -c 1 -r 16000` or `ffmpeg
    /// -i greeting.mp3 -f s16le -ac 1 -ar 16000 -` write it) and sends it as it plays, sealed so
    /// that only the camera opens it and only a device holding its key can make it. The device
    /// watches the camera live meanwhile (not shown): the camera refuses sound that arrives more
    /// than 5 s late by its own clock. The camera needs a speaker set up (`[talk]`).
    Talk {
        /// Camera id or name.
        camera: String,
        /// Raw PCM to say, or `-` for standard input.
        #[arg(long, short, default_value = "-")]
        input: PathBuf,
        /// Samples a second of the input: 8000, 12000, 16000, 24000 or 48000.
        #[arg(long, default_value_t = 16_000)]
        rate: u32,
    },
    /// Open the web viewer: a timeline of every camera's events with thumbnails, filters and a
    /// player, everything verified and decrypted here. Served on 127.0.0.1 only, to the browser
    /// that opens the printed link (it carries a one-time key for this run).
    Ui {
        /// Port to listen on [default: any free port].
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Only print the link; do not open a browser.
        #[arg(long)]
        no_open: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            errln!("keyhole: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let store = cli.store.unwrap_or_else(commands::default_store);
    let json = cli.json;
    let result: anyhow::Result<bool> = runtime.block_on(async {
        match cli.command {
            Command::Init {
                account,
                phrase_file,
            } => commands::init(&store, account, phrase_file)
                .await
                .map(|()| true),
            Command::Recover { account } => commands::recover(&store, account).await.map(|()| true),
            Command::Join { account } => commands::join(&store, account).await.map(|()| true),
            Command::Approve { device, wait } => {
                commands::approve(&store, device.as_deref(), Duration::from_secs(wait))
                    .await
                    .map(|()| true)
            }
            Command::Pair { name, wait, no_qr } => {
                commands::pair(&store, &name, Duration::from_secs(wait), !no_qr)
                    .await
                    .map(|()| true)
            }
            Command::Cameras => commands::cameras(&store, json).await,
            Command::Devices => commands::devices(&store, json).await.map(|()| true),
            Command::Code => commands::code(&store).map(|()| true),
            Command::AcceptShares { from, code } => commands::accept_shares(&store, &from, &code)
                .await
                .map(|()| true),
            Command::RefuseShares { from } => {
                commands::refuse_shares(&store, &from).await.map(|()| true)
            }
            Command::Share {
                camera,
                all: _,
                with,
                code,
                days,
            } => commands::share(&store, camera.as_deref(), &with, &code, days)
                .await
                .map(|()| true),
            Command::Unshare { camera, with } => commands::unshare(&store, &camera, &with)
                .await
                .map(|()| true),
            Command::Shares => commands::shares(&store, json).await.map(|()| true),
            Command::Retention { camera, days } => commands::retention(&store, &camera, days)
                .await
                .map(|()| true),
            Command::Audit => commands::audit(&store, json).await,
            Command::Revoke {
                device,
                change_password,
                keep_password,
            } => {
                let password = match (change_password, keep_password) {
                    (true, _) => commands::PasswordChoice::Change,
                    (_, true) => commands::PasswordChoice::Keep,
                    _ => commands::PasswordChoice::Ask,
                };
                commands::revoke(&store, &device, password)
                    .await
                    .map(|()| true)
            }
            Command::Password => commands::password(&store).await.map(|()| true),
            Command::Login { user } => commands::login(&store, user.as_deref())
                .await
                .map(|()| true),
            Command::Remove {
                camera,
                keep_footage,
                delete_footage: _,
                yes,
            } => commands::remove(&store, &camera, keep_footage, yes)
                .await
                .map(|()| true),
            Command::Events {
                camera,
                cameras,
                since,
                until,
                limit,
                thumbnails,
            } => {
                let named = camera.into_iter().chain(cameras).collect();
                let wanted = events::Wanted {
                    cameras: named,
                    since,
                    until,
                    limit,
                };
                events::events(&store, &wanted, thumbnails.as_deref(), json).await
            }
            Command::Watch {
                cameras,
                thumbnails,
                exec,
                no_notify,
            } => {
                let options = watch::Options {
                    cameras,
                    json,
                    thumbnails,
                    exec,
                    notify: !no_notify,
                };
                watch::watch(&store, &options).await
            }
            Command::Push { action } => match action {
                PushAction::Key => push::key(&store).await,
                PushAction::Register { subscription } => {
                    push::register(&store, &subscription).await
                }
                PushAction::Unregister => push::unregister(&store).await,
            }
            .map(|()| true),
            Command::Verify { camera, full } => commands::verify(&store, &camera, full).await,
            Command::Export {
                camera,
                object,
                output,
                force,
            } => commands::export(&store, &camera, &object, &output, force)
                .await
                .map(|()| true),
            Command::Live {
                camera,
                output,
                seconds,
            } => commands::live(&store, &camera, &output, seconds).await,
            Command::Talk {
                camera,
                input,
                rate,
            } => commands::talk(&store, &camera, &input, rate)
                .await
                .map(|()| true),
            Command::Ui { port, no_open } => {
                commands::ui(&store, port, !no_open).await.map(|()| true)
            }
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            errln!("keyhole: {e:#}");
            if let Some(hint) = commands::hint(&e) {
                errln!("keyhole: {hint}");
            }
            ExitCode::from(2)
        }
    }
}

//! Desktop notifications for `keyhole watch`: each event shown through the session's
//! freedesktop notification service (`org.freedesktop.Notifications` on D-Bus, through
//! `notify-rust`), with its thumbnail decrypted here. Where no such service answers (no session
//! bus, a headless machine), nothing is shown and nothing is said.

use std::path::PathBuf;

use keyhole_client::core::event::EventKind;
use keyhole_client::index::IndexedEvent;

use crate::events;

/// The session's notification service, found to answer.
pub(crate) struct Desktop {
    /// Where thumbnails wait for the service to read them: private to this user, removed when
    /// watching ends.
    thumbnails: tempfile::TempDir,
}

impl Desktop {
    /// The session's notification service, if one answers (this blocks on D-Bus).
    pub(crate) fn find() -> Option<Self> {
        notify_rust::get_server_information().ok()?;
        // In the user's runtime folder (memory, not disk) where there is one.
        let parent = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|p| p.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        let thumbnails = tempfile::Builder::new()
            .prefix("keyhole-watch-")
            .tempdir_in(parent)
            .ok()?;
        Some(Self { thumbnails })
    }

    /// Shows `e` of camera `name`, in the background; a failure is reported, not fatal.
    pub(crate) fn show(&self, e: &IndexedEvent, name: &str) {
        let kind = format!("{:?}", e.details.kind).to_lowercase();
        let mut body = e.details.started_at.to_string();
        if !e.details.note.is_empty() {
            body = format!("{body}\n{}", e.details.note);
        }
        let mut notification = notify_rust::Notification::new();
        notification
            .appname("Keyhole")
            .summary(&format!("{name}: {kind}"))
            // Services may read the body as markup: the camera's words stay words.
            .body(&escape_markup(&body))
            .urgency(if e.details.kind == EventKind::Doorbell {
                notify_rust::Urgency::Critical
            } else {
                notify_rust::Urgency::Normal
            });
        match events::save_thumbnail(self.thumbnails.path(), e) {
            Ok(Some(path)) => {
                notification.image_path(&path.to_string_lossy());
            }
            Ok(None) => {}
            Err(err) => errln!("keyhole watch: could not keep the thumbnail to show: {err}"),
        }
        std::thread::spawn(move || {
            if let Err(err) = notification.show() {
                errln!("keyhole watch: the desktop notification failed: {err}");
            }
        });
    }
}

/// `text` with the characters the notification body markup reads escaped.
fn escape_markup(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

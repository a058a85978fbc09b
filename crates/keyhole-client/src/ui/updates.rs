//! Live updates: the viewer follows the server's announcement channel, brings the device's
//! index up to date whenever a camera has something new (and on every reconnection, which
//! finds what was stored while the channel was down), then tells each open page, on
//! `/api/updates` (Server-Sent Events), to fetch the newest page again. What the page shows still
//! comes only from what this device verified.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::Viewer;

/// The longest wait between attempts to reach the server.
const MAX_RETRY: Duration = Duration::from_secs(30);

/// How often an open page is sent a comment, so the connection is known to be alive.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Follows the announcement channel for as long as the viewer runs.
pub(super) async fn follow(viewer: Arc<Viewer>) {
    let mut retry = Duration::from_secs(1);
    loop {
        let opened = {
            let owner = viewer.owner.read().await;
            owner.announcements().await
        };
        let Ok(mut channel) = opened else {
            // Out of reach: the pages answer from the index meanwhile.
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(MAX_RETRY);
            continue;
        };
        retry = Duration::from_secs(1);
        loop {
            // Once the channel is open, and after each announcement: sync, then tell the pages.
            if viewer.synced(true).await.is_ok() {
                viewer.changes.send_modify(|n| *n = n.map(|n| n + 1));
            }
            if channel.next().await.is_err() {
                break;
            }
        }
    }
}

/// `GET /api/updates`: `changed` each time the index took in something new, until the viewer
/// stops.
pub(super) async fn updates(State(viewer): State<Arc<Viewer>>) -> Response {
    let changes = viewer.changes.subscribe();
    let stream = futures_util::stream::unfold(changes, |mut changes| async move {
        let said = tokio::select! {
            changed = changes.changed() => {
                changed.ok()?;
                // `None`: the viewer is stopping.
                (*changes.borrow_and_update())?;
                Bytes::from_static(b"event: changed\ndata: \n\n")
            }
            () = tokio::time::sleep(KEEP_ALIVE) => Bytes::from_static(b": keep-alive\n\n"),
        };
        Some((Ok::<_, std::convert::Infallible>(said), changes))
    });
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

//! `GET /v1/announcements`: a device's channel of Server-Sent Events saying which of the
//! cameras it may view have new objects (`keyhole_wire::announce`). It starts with `ready`,
//! then says `objects` for each object stored, of the caller's account or of a camera shared
//! with it, and `resync` when announcements were lost. A comment every `keep_alive_secs` (15 by
//! default) keeps proxies from closing it, and the caller's credential is checked again each
//! time: the channel of a device logged out or revoked ends.

use std::collections::HashMap;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use keyhole_wire::announce::{Message, Stored};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio::time::Duration;

use crate::announce::Notice;
use crate::auth::{Caller, bearer};
use crate::error::ApiError;
use crate::store::AccountId;
use crate::{AppState, now_ms};

/// How long a "not a member of that camera's share" is kept: a share made since is announced
/// this much later at worst (its footage is listed at once). A "member" is asked again each
/// time, so a withdrawn share is announced no more.
const NOT_MEMBER_TTL: Duration = Duration::from_secs(30);

pub(super) async fn subscribe(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.device()?;
    let token = bearer(&headers)?.to_owned();
    let account = caller.0.account_id;
    // Subscribed before `ready` is sent: whatever is stored after it is announced.
    let notices = state.announcer.subscribe();
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(announce(state, token, account, notices, tx));
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|bytes| (Ok::<_, std::convert::Infallible>(bytes), rx))
    }));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            // Proxies that buffer responses (nginx) pass these on at once.
            (
                header::HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ],
        body,
    )
        .into_response())
}

/// Writes the channel until the device goes away, its credential ends or the server stops.
async fn announce(
    state: AppState,
    token: String,
    account: AccountId,
    mut notices: tokio::sync::broadcast::Receiver<Notice>,
    tx: mpsc::Sender<Bytes>,
) {
    let mut shared = Shares::default();
    // Devices take 40 s of silence for a dead channel.
    let every = Duration::from_secs(state.config.keep_alive_secs.clamp(1, 30));
    let mut keep_alive = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut next = Some(Bytes::from(Message::Ready.encode()));
    loop {
        if let Some(bytes) = next.take()
            && tx.send(bytes).await.is_err()
        {
            return;
        }
        next = tokio::select! {
            () = state.relay.closed() => return,
            notice = notices.recv() => match notice {
                Ok(Notice::Stored(stored)) => shared
                    .allows(&state, account, &stored)
                    .await
                    .then_some(Message::Objects { camera: stored.camera, sequence: stored.sequence }),
                Ok(Notice::Lost) | Err(RecvError::Lagged(_)) => Some(Message::Resync),
                Err(RecvError::Closed) => return,
            }
            .map(|m| Bytes::from(m.encode())),
            _ = keep_alive.tick() => {
                let still = Caller::of_token(&state, &token).await;
                if !still.is_ok_and(|c| c.device().is_ok()) {
                    return;
                }
                Some(Bytes::from_static(b": keep-alive\n\n"))
            }
        };
    }
}

/// Cameras of other accounts found not shared with the subscriber, and when.
#[derive(Default)]
struct Shares(HashMap<[u8; 16], Instant>);

impl Shares {
    async fn allows(&mut self, state: &AppState, account: AccountId, stored: &Stored) -> bool {
        if stored.account == account {
            return true;
        }
        if self
            .0
            .get(&stored.camera)
            .is_some_and(|asked| asked.elapsed() < NOT_MEMBER_TTL)
        {
            return false;
        }
        let member = state
            .meta
            .share_member(&stored.camera, &account, now_ms())
            .await
            .unwrap_or(false);
        if member {
            self.0.remove(&stored.camera);
        } else {
            self.0.insert(stored.camera, Instant::now());
        }
        member
    }
}

//! Checking what the server lists for a camera: the whole listing (`verify`), or only what is
//! new since the device's index last saw it (`sync_index`), from each object's signed summary
//! or by opening every object.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keyhole_core::envelope::{ObjectKind, ObjectSummary, Opener};
use keyhole_core::event::EventDetails;
use keyhole_core::record::CameraState;
use keyhole_core::report::{
    Checked, DEFAULT_EPOCH_GRACE_MS, EpochStart, Expectations, Failure, Listed, Report, Silence,
};
use keyhole_core::{CameraId, ObjectId, Timestamp};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::ClientError;
use crate::index::Index;
use crate::owner::{Listing, Owner, untrusted};

/// An event's span cut from its segment ([`Owner::event_span`]).
#[derive(Debug)]
pub struct EventSpan {
    /// The segment it was cut from (exported whole under its own id).
    pub clip: ObjectId,
    /// The span as an MP4 of its own, starting at a key frame.
    pub mp4: Vec<u8>,
    /// Where in the segment the span starts, in ms (at or before the event).
    pub starts_at_ms: u64,
    /// Where in the segment the event starts, in ms.
    pub event_at_ms: u64,
}

impl Owner {
    /// Lists everything the server holds for `camera`, verifies each object's place in the
    /// camera's chain from its summary (PROTOCOL.md §7.12) without downloading it, and reports
    /// what is verified, swapped, replayed, reordered or missing — including objects this
    /// device verified before that the listing no longer shows. Altered video is found when it
    /// is played or exported, or by [`Owner::verify_full_at`]. The newest object verified is
    /// remembered for the next listing (save the key store to keep it).
    ///
    /// # Errors
    /// Server or network failures; verification failures are in the report, not errors.
    pub async fn verify(&mut self, camera: &CameraId) -> Result<Report, ClientError> {
        self.verify_at(camera, crate::now()).await
    }

    /// [`Owner::verify`] judging, as of `now`, whether the camera has been silent longer than
    /// its newest head promised.
    ///
    /// # Errors
    /// As [`Owner::verify`].
    pub async fn verify_at(
        &mut self,
        camera: &CameraId,
        now: Timestamp,
    ) -> Result<Report, ClientError> {
        self.verify_with(camera, now, None).await
    }

    /// [`Owner::verify_at`], downloading and opening every object in full as well: the check
    /// that also finds altered video. `progress` is told `(objects done, objects listed)` after
    /// each object.
    ///
    /// # Errors
    /// As [`Owner::verify`].
    pub async fn verify_full_at(
        &mut self,
        camera: &CameraId,
        now: Timestamp,
        progress: &mut (dyn FnMut(usize, usize) + Send),
    ) -> Result<Report, ClientError> {
        self.verify_with(camera, now, Some(progress)).await
    }

    async fn verify_with(
        &mut self,
        camera: &CameraId,
        now: Timestamp,
        full: Option<&mut (dyn FnMut(usize, usize) + Send)>,
    ) -> Result<Report, ClientError> {
        self.refresh_head(camera).await?;
        let listed = self.list_checked(camera, 0, full).await?;
        let expect = self.expectations(camera, None, now)?;
        let report = Report::build(&expect, &listed);
        self.keep_mark(camera, &report);
        self.advance_floor(camera, &report, now).await?;
        Ok(report)
    }

    /// Brings `index` up to date with `camera`: lists only from the newest object it holds as
    /// verified (that object included, so a swap of it shows), checks the chain from the
    /// summaries, keeps the verdicts and opens each new event once. Returns the report for what
    /// was listed; the index holds the rest (save the key store too: the mark may move).
    ///
    /// # Errors
    /// Server or network failures, or the index failing.
    pub async fn sync_index(
        &mut self,
        camera: &CameraId,
        index: &mut Index,
        now: Timestamp,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Report, ClientError> {
        self.refresh_head(camera).await?;
        let resume = index.resume_from(camera)?;
        let floor = self
            .camera(camera)?
            .floor
            .as_ref()
            .map(|f| f.body().keep_from);
        let first = resume.unwrap_or(1).max(floor.unwrap_or(1)).max(1);
        let listed = self.list_checked(camera, first - 1, None).await?;
        let expect = self.expectations(camera, Some(first), now)?;
        let mut report = Report::build(&expect, &listed);
        if let Some(held) = resume.filter(|r| *r == first) {
            index.check_resumed(camera, held, &mut report)?;
        }
        // Each new event is opened before the listing is recorded: a sync cut short lists the
        // same objects again, and opens only what it has not kept.
        let events = report
            .entries
            .iter()
            .filter(|e| e.is_verified())
            .filter_map(|e| {
                e.header
                    .as_ref()
                    .filter(|h| h.kind == ObjectKind::Event)
                    .map(|h| h.object_id)
            });
        for event in events.collect::<Vec<_>>() {
            if index.has_event(&event)? {
                continue;
            }
            let mut plain = Zeroizing::new(Vec::new());
            let found = match self.export(camera, &event, &mut *plain).await? {
                Checked::Verified(opened) => match EventDetails::decode(&plain) {
                    Ok(details) => {
                        index.put_event(
                            camera,
                            &event,
                            opened.header.captured_at,
                            &details,
                            rng,
                        )?;
                        None
                    }
                    Err(e) => Some(format!("unreadable event: {e}")),
                },
                Checked::Failed { reason, .. } => Some(reason.to_string()),
            };
            if let Some(problem) = found {
                index.mark_played(camera, &event, &problem)?;
            }
        }
        self.keep_mark(camera, &report);
        index.record(camera, first, &report, now, false)?;
        Ok(report)
    }

    /// The span of `event` (details opened and verified) as an MP4 of its own: its clip (a
    /// whole segment) downloaded and verified, then cut from the key frame before the event's
    /// start to its end, by the camera's signed capture time of the segment.
    ///
    /// # Errors
    /// Server or network failures; [`ClientError::Untrusted`] if the event names no clip, the
    /// clip does not verify, or it is not an MP4 that can be cut.
    pub async fn event_span(
        &self,
        camera: &CameraId,
        event: &EventDetails,
    ) -> Result<EventSpan, ClientError> {
        let clip = event
            .clip
            .ok_or_else(|| untrusted("this event has no clip"))?;
        let mut whole = Zeroizing::new(Vec::new());
        let opened = match self.export(camera, &clip, &mut *whole).await? {
            Checked::Verified(opened) => opened,
            Checked::Failed { reason, .. } => {
                return Err(untrusted(format!(
                    "its clip {clip} did not verify: {reason}"
                )));
            }
        };
        let ticks_per_ms = u64::from(keyhole_media::h264::TIMESCALE) / 1000;
        let from_ms = event
            .started_at
            .0
            .saturating_sub(opened.header.captured_at.0);
        // An event sealed as it began (a press, duration 0) lasts to its clip's end.
        let to_ms = match event.duration_ms {
            0 => u64::MAX / ticks_per_ms,
            d => from_ms.saturating_add(u64::from(d)),
        };
        let (mp4, at) = keyhole_media::mp4::cut(
            &whole,
            from_ms.saturating_mul(ticks_per_ms),
            to_ms.saturating_mul(ticks_per_ms),
        )
        .map_err(|e| untrusted(format!("its clip {clip} cannot be cut: {e}")))?;
        Ok(EventSpan {
            clip,
            mp4,
            starts_at_ms: at / ticks_per_ms,
            event_at_ms: from_ms,
        })
    }

    /// Lists `camera`'s objects after sequence `after` and checks each: from its summary, or,
    /// with `full` (told `(done, listed)` as it goes) or without a summary, by opening it.
    async fn list_checked(
        &self,
        camera: &CameraId,
        mut after: u64,
        mut full: Option<&mut (dyn FnMut(usize, usize) + Send)>,
    ) -> Result<Vec<Listed>, ClientError> {
        let mut objects = Vec::new();
        loop {
            let page: Listing = self
                .api
                .get_json(&format!("/v1/cameras/{camera}/objects?after={after}"))
                .await?;
            objects.extend(page.objects);
            match page.next_after {
                Some(n) if n > after => after = n,
                _ => break,
            }
        }
        let mut listed = Vec::with_capacity(objects.len());
        for (done, o) in objects.iter().enumerate() {
            let listed_id: ObjectId = o.object_id.parse().map_err(untrusted)?;
            let summary = o
                .summary
                .as_deref()
                .and_then(|s| STANDARD.decode(s).ok())
                .and_then(|b| ObjectSummary::decode(&b).ok());
            let checked = match (&mut full, summary) {
                (None, Some(summary)) => {
                    self.check_summary(camera, &listed_id, &summary, o.size)?
                }
                (full, _) => {
                    // Asked for the full check, or nothing else to go on.
                    let checked = self
                        .open_object(camera, &o.object_id, &mut |_| Ok(()))
                        .await?;
                    if let Some(progress) = full {
                        progress(done + 1, objects.len());
                    }
                    checked
                }
            };
            listed.push(Listed { listed_id, checked });
        }
        Ok(listed)
    }

    /// What this device expects of `camera`'s listing, starting at `first` (by default at the
    /// owner's retention floor), judged as of `now`.
    fn expectations(
        &self,
        camera: &CameraId,
        first: Option<u64>,
        now: Timestamp,
    ) -> Result<Expectations, ClientError> {
        let keys = self.camera(camera)?;
        Ok(Expectations {
            camera_id: *camera,
            epochs: keys
                .records
                .iter()
                .map(|r| EpochStart {
                    epoch: r.body().epoch,
                    began: r.body().issued_at,
                })
                .collect(),
            // What the owner's retention let go is not missing (PROTOCOL.md §11.5).
            first_sequence: first
                .unwrap_or_else(|| keys.floor.as_ref().map_or(1, |f| f.body().keep_from)),
            verified_before: keys.verified,
            epoch_grace_ms: DEFAULT_EPOCH_GRACE_MS,
            camera_head: keys.head.as_ref().map(|h| h.head),
            silence: match (keys.records.first(), keys.records.last()) {
                (Some(first), Some(last)) if last.body().state != CameraState::Removed => {
                    Some(Silence {
                        now,
                        paired_at: first.body().issued_at,
                    })
                }
                _ => None,
            },
        })
    }

    /// Moves the mark of the newest object verified (kept in the key store).
    fn keep_mark(&mut self, camera: &CameraId, report: &Report) {
        if let Some(keys) = self.cameras.get_mut(camera) {
            keys.verified = report.high_water(keys.verified);
        }
    }

    /// What an object's summary shows without its payload: the camera's signatures over its
    /// header and over the payload digest and chunk count its listed size implies, that it is
    /// the object listed, and that this device's key for its epoch opens its clip key. Whether
    /// the stored chunks still match is left to opening it.
    fn check_summary(
        &self,
        camera: &CameraId,
        listed_id: &ObjectId,
        summary: &ObjectSummary,
        size: u64,
    ) -> Result<Checked, ClientError> {
        let keys = self.camera(camera)?;
        let camera_key = keys.records[0].body().camera_key;
        let prefix = summary.prefix();
        let verified = match summary.verify(size, &camera_key) {
            Ok(v) => v,
            Err(e) => return Ok(Checked::from_open(prefix, Err(e))),
        };
        let header = verified.object.header.clone();
        let failed = |reason| Checked::Failed {
            header: Some(header.clone()),
            reason,
        };
        if header.object_id != *listed_id {
            return Ok(failed(Failure::Mislabeled {
                sealed_id: header.object_id,
            }));
        }
        let Some(viewing) = keys.viewing.get(&header.epoch) else {
            return Ok(failed(Failure::NoViewingKey {
                epoch: header.epoch,
            }));
        };
        Ok(match Opener::from_signed(verified.signed, viewing) {
            Ok(_) => Checked::Verified(verified.object),
            Err(e) => Checked::from_open(prefix, Err(e)),
        })
    }
}

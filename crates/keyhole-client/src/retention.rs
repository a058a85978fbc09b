//! Retention on the owner's devices (PROTOCOL.md §11.5): the owner sets how many days of a
//! camera's footage to keep, and each device that verifies the camera moves the camera's signed
//! floor past what has aged out. The floor is a statement in the account log; the server deletes
//! below the newest one and nothing else, and every device starts its reports there, so what
//! the owner let go is never reported missing and anything else the server deletes always is.

use keyhole_core::log::EntryKind;
use keyhole_core::report::Report;
use keyhole_core::retention::{self, RetentionFloorBody, SignedRetentionFloor};
use keyhole_core::{CameraId, Timestamp};

use crate::ClientError;
use crate::owner::{Owner, untrusted};

/// A camera's retention floors' place in the log.
pub(crate) fn retention_subject(camera: &CameraId) -> (EntryKind, [u8; 16]) {
    (EntryKind::Retention, camera.0)
}

impl Owner {
    /// The retention `camera` is under, as the newest floor this device verified says: the
    /// first sequence kept and the days of footage kept (0: everything). `None` if the owner
    /// never set any.
    #[must_use]
    pub fn retention(&self, camera: &CameraId) -> Option<&RetentionFloorBody> {
        Some(self.cameras.get(camera)?.floor.as_ref()?.body())
    }

    /// Sets how many days of `camera`'s footage to keep (0: everything): a new floor version in
    /// the account log, keeping the floor where it is. The floor moves when a device next
    /// verifies the camera ([`Owner::verify`]); the server deletes below it at its next sweep.
    ///
    /// # Errors
    /// A camera that is not this account's (one shared with it); server errors.
    pub async fn set_retention(
        &mut self,
        camera: &CameraId,
        max_age_days: u32,
        now: Timestamp,
    ) -> Result<(), ClientError> {
        self.refresh().await?;
        if self.camera(camera)?.owner.is_some() {
            return Err(untrusted(format!(
                "camera {camera} is shared with this account; only its owner sets its retention"
            )));
        }
        let body = match self.cameras.get(camera).and_then(|k| k.floor.as_ref()) {
            Some(held) => RetentionFloorBody {
                max_age_days,
                ..held.successor(now)
            },
            None => RetentionFloorBody::first(*self.account(), *camera, max_age_days, now),
        };
        self.publish_floor(camera, body, now).await
    }

    /// Moves `camera`'s floor past the objects `report` verified that its policy lets go as of
    /// `now` (captured longer ago than it keeps): from the floor up, in sequence order, to the
    /// first one still kept. Stopping there means a camera whose clock jumped back (a board
    /// without a clock, booted before it learned the time) cannot pull the floor past newer
    /// footage. Only the account's own cameras; a floor another device moved first is read at
    /// the next sync.
    ///
    /// # Errors
    /// Server errors other than that race.
    pub(crate) async fn advance_floor(
        &mut self,
        camera: &CameraId,
        report: &Report,
        now: Timestamp,
    ) -> Result<(), ClientError> {
        let Some(keys) = self.cameras.get(camera).filter(|k| k.owner.is_none()) else {
            return Ok(());
        };
        let Some(held) = keys.floor.as_ref() else {
            return Ok(());
        };
        let Some(cutoff) = held.body().cutoff(now) else {
            return Ok(());
        };
        // Capture times come from the camera's signed headers, never from the listing.
        let mut verified: Vec<_> = report
            .entries
            .iter()
            .filter(|e| e.is_verified())
            .filter_map(|e| e.header.as_ref())
            .filter(|h| h.sequence >= held.body().keep_from)
            .collect();
        verified.sort_by_key(|h| h.sequence);
        let keep_from = verified
            .iter()
            .take_while(|h| h.captured_at < cutoff)
            .last()
            .map(|h| h.sequence.saturating_add(1));
        let Some(keep_from) = keep_from.filter(|k| *k > held.body().keep_from) else {
            return Ok(());
        };
        let body = RetentionFloorBody {
            keep_from,
            ..held.successor(now)
        };
        match self.publish_floor(camera, body, now).await {
            // Another device appended first: its floor arrives with the next sync.
            Err(ClientError::Server { status: 409, .. }) => Ok(()),
            other => other,
        }
    }

    /// Signs `body` as this device, appends it to the log and holds it.
    async fn publish_floor(
        &mut self,
        camera: &CameraId,
        body: RetentionFloorBody,
        now: Timestamp,
    ) -> Result<(), ClientError> {
        let version = body.version;
        let signed = body.sign(self.signer()).map_err(untrusted)?;
        self.append(retention_subject(camera), version, signed.encoded(), now)
            .await?;
        let floor = signed
            .verify_about(self.roster(), camera)
            .map_err(untrusted)?;
        if let Some(keys) = self.cameras.get_mut(camera) {
            keys.floor = Some(floor);
        }
        Ok(())
    }

    /// Brings each own camera's floor up to the newest version the log records, verified
    /// against the roster in force where the log records it; a floor never goes down.
    pub(crate) async fn refresh_floors(&mut self) -> Result<(), ClientError> {
        let logged: Vec<CameraId> = self
            .log
            .subjects(EntryKind::Retention)
            .map(CameraId)
            .collect();
        for camera in logged {
            let subject = retention_subject(&camera);
            let (Some(latest), Some(keys)) = (self.log.latest(subject), self.cameras.get(&camera))
            else {
                continue;
            };
            let held = keys.floor.clone();
            if held.as_ref().is_some_and(|f| f.body().version >= latest) {
                continue;
            }
            let path = format!("/v1/cameras/{camera}/retention");
            let bytes = match self.read_logged(subject, &path, latest).await {
                // The camera was removed with its footage, its floors with it.
                Err(ClientError::Server { status: 404, .. }) => continue,
                other => other?,
            };
            let roster = self
                .log
                .roster_when(subject, latest)
                .ok_or_else(|| untrusted("no roster in force for the retention floor"))?;
            let signed = SignedRetentionFloor::decode(&bytes).map_err(untrusted)?;
            let floor =
                retention::accept(held.as_ref(), signed, roster, &camera).map_err(untrusted)?;
            if let Some(keys) = self.cameras.get_mut(&camera) {
                keys.floor = Some(floor);
            }
        }
        Ok(())
    }
}

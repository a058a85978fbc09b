//! The cameras' signed heads (PROTOCOL.md §8.3), as this device holds them: fetched from the
//! server, verified under each camera's key, and kept (in the key store) only when newer than
//! the one held — so a server that withholds or rolls back heads makes the camera look silent,
//! and one that shows this device an old account history is caught by the versions a fresh
//! head names.

use keyhole_core::CameraId;
use keyhole_core::camera_head::CameraHead;
use keyhole_core::record::CameraState;

use crate::ClientError;
use crate::owner::{Owner, untrusted};

/// A camera head this device verified, with its bytes (kept in the key store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeldHead {
    pub(crate) head: CameraHead,
    pub(crate) bytes: Vec<u8>,
}

impl HeldHead {
    /// Verifies `bytes` as `camera`'s head under `key`.
    pub(crate) fn verify(
        bytes: Vec<u8>,
        camera: &CameraId,
        key: &keyhole_core::CameraPublicKey,
    ) -> Result<Self, keyhole_core::camera_head::CameraHeadError> {
        Ok(Self {
            head: CameraHead::verify(&bytes, camera, key)?,
            bytes,
        })
    }
}

impl Owner {
    /// The newest head of `camera` this device holds, if it ever verified one.
    #[must_use]
    pub fn camera_head(&self, camera: &CameraId) -> Option<CameraHead> {
        self.cameras.get(camera)?.head.as_ref().map(|h| h.head)
    }

    /// Fetches `camera`'s head from the server and keeps it if it is newer than the one held.
    /// Returns the head held afterwards.
    ///
    /// # Errors
    /// Server errors, or a head that does not verify under the camera's key (the server
    /// forged or damaged it).
    pub(crate) async fn refresh_head(
        &mut self,
        camera: &CameraId,
    ) -> Result<Option<CameraHead>, ClientError> {
        let keys = self.camera(camera)?;
        let Some(first) = keys.records.first() else {
            return Ok(None);
        };
        let key = first.body().camera_key;
        let bytes = match self
            .api
            .get_bytes(&format!("/v1/cameras/{camera}/head"))
            .await
        {
            Ok(bytes) => bytes,
            // A shared camera no longer served to this account (or one the server says is
            // gone): nothing new; the head held ages, and the camera shows as silent.
            Err(ClientError::Server { status: 404, .. }) => Vec::new(),
            Err(e) => return Err(e),
        };
        if !bytes.is_empty() {
            let fetched = HeldHead::verify(bytes, camera, &key).map_err(|e| {
                untrusted(format!(
                    "camera {camera}'s head as the server sends it does not verify: {e}"
                ))
            })?;
            if let Some(keys) = self.cameras.get_mut(camera)
                && keys
                    .head
                    .as_ref()
                    .is_none_or(|held| fetched.head.is_newer_than(&held.head))
            {
                keys.head = Some(fetched);
            }
        }
        Ok(self.camera_head(camera))
    }

    /// Refreshes every camera's head and checks that none names a newer account state than
    /// this device was shown: a camera that holds a newer roster or record than this device
    /// after a sync proves the server is holding this device's history back.
    ///
    /// # Errors
    /// [`ClientError::Stale`] naming the camera and the versions; as [`Owner::refresh_head`].
    pub(crate) async fn check_heads(&mut self) -> Result<(), ClientError> {
        let cameras: Vec<CameraId> = self.cameras.keys().copied().collect();
        for camera in cameras {
            let Some(head) = self.refresh_head(&camera).await? else {
                continue;
            };
            let keys = self.camera(&camera)?;
            let Some(record) = keys.records.last() else {
                continue;
            };
            if record.body().state == CameraState::Removed {
                continue;
            }
            let name = &record.body().name;
            let record_version = record.body().version;
            if head.record_version > record_version {
                return Err(ClientError::Stale(format!(
                    "camera {name:?} ({camera}) signed at {} that it holds its record version \
                     {}, but this device was shown only version {record_version}",
                    head.clock, head.record_version
                )));
            }
            // A shared camera follows its owner's roster, not this account's.
            let roster_version = self.roster().body().version;
            if keys.owner.is_none() && head.roster_version > roster_version {
                return Err(ClientError::Stale(format!(
                    "camera {name:?} ({camera}) signed at {} that it holds the account's device \
                     list version {}, but this device was shown only version {roster_version}",
                    head.clock, head.roster_version
                )));
            }
        }
        Ok(())
    }
}

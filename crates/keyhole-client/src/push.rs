//! Web Push registration (`docs/API.md`, Push): this device hands the server a push
//! subscription made by a push stack that holds its keys (a browser, a phone, a `UnifiedPush`
//! distributor), and the server then pushes a wake-up for each event of the cameras this
//! device may view. A wake-up names a camera and a sequence number; like an announcement it is
//! only a hint to sync: what the sync lists is verified as every listing is.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{ClientError, Owner};

/// A Web Push subscription as push stacks write it (`PushSubscription.toJSON()`): the push
/// resource URL and the keys (base64url) pushes are encrypted to (RFC 8291).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushSubscription {
    /// Where the push service takes messages for this device.
    pub endpoint: String,
    /// The subscription's keys.
    pub keys: PushKeys,
}

/// A subscription's public key and authentication secret, base64url.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushKeys {
    /// The P-256 public key, uncompressed.
    pub p256dh: String,
    /// The 16-byte authentication secret.
    pub auth: String,
}

/// What a push says, once its push stack decrypted it: camera `camera` stored event
/// `sequence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WakeUp {
    /// The camera.
    pub camera: keyhole_core::CameraId,
    /// The event's sequence number on the camera's chain.
    pub sequence: u64,
}

impl WakeUp {
    /// Reads a decrypted push. It is the server's word, so it is only a hint: sync that
    /// camera and believe what verifies.
    ///
    /// # Errors
    /// [`ClientError::Untrusted`] if it is not a wake-up.
    pub fn parse(message: &[u8]) -> Result<Self, ClientError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Wire {
            camera: String,
            sequence: u64,
        }
        let wire: Wire = serde_json::from_slice(message)
            .map_err(|e| ClientError::Untrusted(format!("not a push wake-up: {e}")))?;
        let camera = wire
            .camera
            .parse::<keyhole_core::CameraId>()
            .map_err(|e| ClientError::Untrusted(format!("the wake-up's camera: {e}")))?;
        Ok(Self {
            camera,
            sequence: wire.sequence,
        })
    }
}

impl Owner {
    /// The server's application server key (VAPID, base64url) to make a push subscription with.
    ///
    /// # Errors
    /// [`ClientError`] if the server cannot be reached or refuses.
    pub async fn push_key(&self) -> Result<String, ClientError> {
        let answer: Value = self.api().get_json("/v1/push/key").await?;
        answer["application_server_key"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ClientError::Untrusted("the answer holds no push key".into()))
    }

    /// Has the server push this device's wake-ups to `subscription`, in place of any before.
    ///
    /// # Errors
    /// [`ClientError`] if the server cannot be reached or refuses it (saying why).
    pub async fn register_push(&self, subscription: &PushSubscription) -> Result<(), ClientError> {
        let body = serde_json::to_value(subscription)
            .map_err(|e| ClientError::Untrusted(e.to_string()))?;
        self.api().put_json("/v1/push/subscription", &body).await
    }

    /// Stops the server pushing to this device; whether it was.
    ///
    /// # Errors
    /// [`ClientError`] if the server cannot be reached or refuses.
    pub async fn unregister_push(&self) -> Result<bool, ClientError> {
        match self.api().delete("/v1/push/subscription").await {
            Ok(_) => Ok(true),
            Err(ClientError::Server { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wake_up_names_a_camera_and_a_sequence_and_nothing_else() {
        let camera = "ab".repeat(16);
        let woken =
            WakeUp::parse(format!(r#"{{"camera":"{camera}","sequence":7}}"#).as_bytes()).unwrap();
        assert_eq!(woken.camera.to_string(), camera);
        assert_eq!(woken.sequence, 7);
        for bad in [
            "{}".to_owned(),
            r#"{"camera":"ab","sequence":7}"#.to_owned(),
            format!(r#"{{"camera":"{camera}","sequence":-1}}"#),
            format!(r#"{{"camera":"{camera}","sequence":7,"note":"x"}}"#),
            "not json".to_owned(),
        ] {
            assert!(WakeUp::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}

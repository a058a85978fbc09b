//! Web Push (RFC 8030) to devices that registered a push subscription (`PUT /v1/push`): when an
//! event is stored, each device that may view its camera is sent a wake-up naming the camera
//! and the event's sequence number, encrypted to the device (RFC 8291) so its push service
//! reads nothing, and signed for that service with the servers' VAPID key (RFC 8292). The device
//! then syncs and verifies as after an announcement: a push is a hint, never trusted.
//!
//! Only events are pushed (a phone is not woken for every clip); the server tells them apart
//! by the kind in the sealed header, which it already reads to index objects.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, Uri};
use base64::Engine as _;
use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose};
use p256::ecdsa::SigningKey;
use p256::ecdsa::signature::Signer as _;
use tokio::sync::Semaphore;
use zeroize::Zeroize as _;

use crate::metrics::Metrics;
use crate::store::{AccountId, MetaStore, PushSubscription, PushTarget};
use crate::{AppState, now_ms};

/// base64url as push subscriptions carry it: written without padding, read with or without.
pub const B64URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    NO_PAD.with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// How long a push service keeps a wake-up for a device it cannot reach, in seconds: after an
/// hour the device learns of the event when it next syncs anyway.
const TTL_SECS: u64 = 3600;
/// How long a VAPID token is good for (RFC 8292 §2: at most 24 hours).
const VAPID_LIFETIME_SECS: u64 = 12 * 3600;
const _: () = assert!(VAPID_LIFETIME_SECS <= 24 * 3600);
/// Pushes in flight at once, over every event: a burst waits rather than opening thousands of
/// connections.
const IN_FLIGHT: usize = 64;
/// The longest a push service may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The longest endpoint URL accepted.
const MAX_ENDPOINT: usize = 2048;

/// Signs and sends pushes.
pub struct Pusher {
    key: SigningKey,
    /// The VAPID public key, uncompressed, in base64url: the application server key devices
    /// subscribe with, and the `k` of every push.
    public: String,
    /// The VAPID `sub` claim: how a push service reaches the operator.
    contact: Option<String>,
    /// Whether `http://` endpoints are taken (`push_allow_http`).
    allow_http: bool,
    http: reqwest::Client,
    in_flight: Arc<Semaphore>,
}

impl std::fmt::Debug for Pusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pusher")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl Pusher {
    /// The pusher with the servers' VAPID key, made and stored on first use.
    ///
    /// # Errors
    /// If the database fails or holds a key that is not one.
    pub async fn open(
        meta: &dyn MetaStore,
        contact: Option<String>,
        allow_http: bool,
    ) -> anyhow::Result<Self> {
        let mut candidate: [u8; 32] = p256::SecretKey::random(&mut rand_core::OsRng)
            .to_bytes()
            .into();
        let mut stored = meta.push_key(&candidate).await?;
        candidate.zeroize();
        let key = SigningKey::from_bytes(&stored.into())
            .map_err(|_| anyhow::anyhow!("the stored push (VAPID) key is not a P-256 key"));
        stored.zeroize();
        let key = key?;
        let public = B64URL.encode(key.verifying_key().to_encoded_point(false).as_bytes());
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            // A push service answers; it never sends the server elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            key,
            public,
            contact,
            allow_http,
            http,
            in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
        })
    }

    /// The application server key devices subscribe with (base64url, uncompressed P-256).
    #[must_use]
    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// The `Authorization` value for a push to `endpoint` (RFC 8292 §3): `vapid t=JWT, k=KEY`,
    /// the token's audience the endpoint's origin, expiring at `expires` (Unix seconds).
    #[must_use]
    pub fn vapid(&self, endpoint: &Uri, expires: u64) -> String {
        let audience = format!(
            "{}://{}",
            endpoint.scheme_str().unwrap_or("https"),
            endpoint.authority().map_or("", |a| a.as_str())
        );
        let mut claims = serde_json::json!({ "aud": audience, "exp": expires });
        if let Some(contact) = &self.contact {
            claims["sub"] = contact.as_str().into();
        }
        let signed = format!(
            "{}.{}",
            B64URL.encode(br#"{"typ":"JWT","alg":"ES256"}"#),
            B64URL.encode(claims.to_string())
        );
        let signature: p256::ecdsa::Signature = self.key.sign(signed.as_bytes());
        format!(
            "vapid t={signed}.{}, k={}",
            B64URL.encode(signature.to_bytes()),
            self.public
        )
    }

    /// The push of `payload` to `subscription`: encrypted to it (RFC 8291, `aes128gcm`), with
    /// its TTL, urgency and VAPID authorization.
    ///
    /// # Errors
    /// If the stored subscription is not one (it was checked when registered).
    pub fn request(
        &self,
        subscription: &PushSubscription,
        payload: &[u8],
        now_secs: u64,
    ) -> Result<reqwest::Request, String> {
        let endpoint = check_endpoint(&subscription.endpoint, self.allow_http)?;
        let (ua_public, auth) = check_keys(&subscription.p256dh, &subscription.auth)?;
        let mut request = web_push_native::WebPushBuilder::new(endpoint.clone(), ua_public, auth)
            .with_valid_duration(Duration::from_secs(TTL_SECS))
            .build(payload)
            .map_err(|e| format!("encrypting the push: {e}"))?;
        let authorization =
            HeaderValue::try_from(self.vapid(&endpoint, now_secs + VAPID_LIFETIME_SECS))
                .map_err(|e| e.to_string())?;
        let headers = request.headers_mut();
        headers.insert(axum::http::header::AUTHORIZATION, authorization);
        // RFC 8030 §5.3: someone at the door is worth waking a phone for.
        headers.insert("urgency", HeaderValue::from_static("high"));
        reqwest::Request::try_from(request).map_err(|e| e.to_string())
    }
}

/// `endpoint` as a push resource URL the server will send to: `https` (or `http` when
/// `allow_http`), with a host and no user name or password.
///
/// # Errors
/// Saying what is wrong with it.
pub fn check_endpoint(endpoint: &str, allow_http: bool) -> Result<Uri, String> {
    if endpoint.len() > MAX_ENDPOINT {
        return Err(format!(
            "the endpoint is longer than {MAX_ENDPOINT} characters"
        ));
    }
    let uri: Uri = endpoint
        .parse()
        .map_err(|_| "the endpoint is not a URL".to_owned())?;
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if allow_http => {}
        Some("http") => {
            return Err(
                "the endpoint must be https:// (this server takes http:// endpoints only with \
                 push_allow_http)"
                    .into(),
            );
        }
        _ => return Err("the endpoint must be an https:// URL".into()),
    }
    let authority = uri
        .authority()
        .ok_or_else(|| "the endpoint has no host".to_owned())?;
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return Err("the endpoint must name a host, without a user name or password".into());
    }
    Ok(uri)
}

/// A subscription's keys as RFC 8291 takes them: a P-256 point (uncompressed, 65 bytes) and a
/// 16-byte authentication secret.
///
/// # Errors
/// Saying which is wrong.
pub fn check_keys(
    p256dh: &[u8],
    auth: &[u8],
) -> Result<(p256::PublicKey, web_push_native::Auth), String> {
    if p256dh.len() != 65 {
        return Err("keys.p256dh must be an uncompressed P-256 point (65 bytes)".into());
    }
    let point = p256::PublicKey::from_sec1_bytes(p256dh)
        .map_err(|_| "keys.p256dh is not a point on P-256".to_owned())?;
    if auth.len() != 16 {
        return Err("keys.auth must be 16 bytes".into());
    }
    Ok((point, web_push_native::Auth::clone_from_slice(auth)))
}

/// What a push says: the camera and the sequence number of the event stored, and nothing of
/// what the event holds.
#[must_use]
pub fn wake_up(camera: &[u8; 16], sequence: u64) -> Vec<u8> {
    serde_json::json!({ "camera": hex::encode(camera), "sequence": sequence })
        .to_string()
        .into_bytes()
}

/// Pushes the event `sequence` of `camera` (of `account`) to every subscribed device that may
/// view it; returns once each push is answered or has failed. A subscription its push service
/// calls gone (404, 410) is forgotten.
pub async fn deliver(state: AppState, camera: [u8; 16], account: AccountId, sequence: u64) {
    let targets = match state.meta.push_targets(&camera, &account, now_ms()).await {
        Ok(targets) => targets,
        Err(e) => {
            tracing::warn!(error = %e, "could not read push subscriptions");
            return;
        }
    };
    let payload = wake_up(&camera, sequence);
    let sends = targets.into_iter().map(|target| {
        let state = state.clone();
        let payload = payload.clone();
        async move { send(&state, &target, &payload).await }
    });
    futures_util::future::join_all(sends).await;
}

async fn send(state: &AppState, target: &PushTarget, payload: &[u8]) {
    // A device taken off the roster keeps its credential until it logs out; it is told nothing.
    if !crate::auth::listed(state, &target.account_id, &target.device_id)
        .await
        .unwrap_or(false)
    {
        return;
    }
    let pusher = &state.pusher;
    let Ok(_permit) = pusher.in_flight.acquire().await else {
        return;
    };
    let now_secs = u64::try_from(now_ms() / 1000).unwrap_or(0);
    let request = match pusher.request(&target.subscription, payload, now_secs) {
        Ok(r) => r,
        Err(why) => {
            tracing::warn!(%why, "could not make a push");
            Metrics::add(&state.metrics.pushes_failed, 1);
            return;
        }
    };
    let host = request.url().host_str().unwrap_or("").to_owned();
    match pusher.http.execute(request).await {
        Ok(answer) if answer.status().is_success() => {
            Metrics::add(&state.metrics.pushes_sent, 1);
        }
        Ok(answer) if matches!(answer.status().as_u16(), 404 | 410) => {
            // RFC 8030 §7.3: the subscription expired or was withdrawn.
            Metrics::add(&state.metrics.push_subscriptions_gone, 1);
            if let Err(e) = state
                .meta
                .delete_push_subscription(&target.subscription.token_hash)
                .await
            {
                tracing::warn!(error = %e, "could not forget a gone push subscription");
            }
        }
        Ok(answer) => {
            Metrics::add(&state.metrics.pushes_failed, 1);
            tracing::warn!(%host, status = %answer.status(), "a push service refused a push");
        }
        Err(e) => {
            Metrics::add(&state.metrics.pushes_failed, 1);
            // The endpoint's path is the subscription's capability: only its host is logged.
            tracing::warn!(%host, error = %e.without_url(), "a push did not reach its service");
        }
    }
}

#[cfg(test)]
mod tests {
    use p256::elliptic_curve::sec1::ToEncodedPoint as _;

    use super::*;

    /// RFC 8291 Appendix A: the user agent's keys and the message an application server sent.
    const RFC_UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
    const RFC_AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
    const RFC_MESSAGE: &str = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";
    const RFC_PLAINTEXT: &[u8] = b"When I grow up, I want to be a watermelon";

    fn rfc_keys() -> (p256::SecretKey, web_push_native::Auth) {
        let secret = p256::SecretKey::from_slice(&B64URL.decode(RFC_UA_PRIVATE).expect("base64"))
            .expect("key");
        let auth =
            web_push_native::Auth::clone_from_slice(&B64URL.decode(RFC_AUTH).expect("base64"));
        (secret, auth)
    }

    #[test]
    fn the_rfc_8291_message_opens_to_its_plaintext_and_not_once_altered() {
        let (secret, auth) = rfc_keys();
        let message = B64URL.decode(RFC_MESSAGE).expect("base64");
        let opened = web_push_native::decrypt(message.clone(), &secret, &auth).expect("opens");
        assert_eq!(opened, RFC_PLAINTEXT);
        // Failure vectors: a changed ciphertext byte, a changed salt byte, another secret.
        for at in [message.len() - 1, 0] {
            let mut altered = message.clone();
            altered[at] ^= 1;
            assert!(
                web_push_native::decrypt(altered, &secret, &auth).is_err(),
                "byte {at}"
            );
        }
        let mut other = auth;
        other[0] ^= 1;
        assert!(web_push_native::decrypt(message, &secret, &other).is_err());
    }

    #[tokio::test]
    async fn a_push_is_encrypted_to_the_subscription_and_signed_for_its_service() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = crate::store::SqlStore::open_sqlite(&dir.path().join("db"))
            .await
            .expect("db");
        let pusher = Pusher::open(&meta, Some("mailto:ops@example.com".into()), false)
            .await
            .expect("pusher");
        // The key is kept: a second server on the database signs with the same one.
        let again = Pusher::open(&meta, None, false).await.expect("pusher");
        assert_eq!(again.public_key(), pusher.public_key());

        let (secret, auth) = rfc_keys();
        let subscription = PushSubscription {
            token_hash: [7; 32],
            endpoint: "https://push.example.net:8443/p/abc".into(),
            p256dh: secret
                .public_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
            auth: auth.to_vec(),
        };
        let payload = wake_up(&[0xab; 16], 42);
        let request = pusher
            .request(&subscription, &payload, 1_000_000)
            .expect("request");
        assert_eq!(request.url().as_str(), subscription.endpoint);
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(header("content-encoding"), "aes128gcm");
        assert_eq!(header("ttl"), TTL_SECS.to_string());
        assert_eq!(header("urgency"), "high");
        let body = request.body().and_then(|b| b.as_bytes()).expect("body");
        let opened = web_push_native::decrypt(body.to_vec(), &secret, &auth).expect("opens");
        assert_eq!(opened, payload);
        assert_eq!(
            String::from_utf8(opened).expect("text"),
            format!(r#"{{"camera":"{}","sequence":42}}"#, "ab".repeat(16))
        );

        // VAPID: the token verifies under k, for the endpoint's origin, within 24 hours.
        let authorization = header("authorization");
        let rest = authorization.strip_prefix("vapid t=").expect("vapid");
        let (token, k) = rest.split_once(", k=").expect("k");
        assert_eq!(k, pusher.public_key());
        let (signed, signature) = token.rsplit_once('.').expect("signature");
        let key =
            p256::ecdsa::VerifyingKey::from_sec1_bytes(&B64URL.decode(k).expect("k")).expect("key");
        let signature = p256::ecdsa::Signature::from_slice(&B64URL.decode(signature).expect("sig"))
            .expect("sig");
        use p256::ecdsa::signature::Verifier as _;
        key.verify(signed.as_bytes(), &signature).expect("verifies");
        let mut tampered = signed.as_bytes().to_vec();
        tampered[0] ^= 1;
        assert!(key.verify(&tampered, &signature).is_err());
        let claims = signed.split('.').nth(1).expect("claims");
        let claims: serde_json::Value =
            serde_json::from_slice(&B64URL.decode(claims).expect("claims")).expect("json");
        assert_eq!(claims["aud"], "https://push.example.net:8443");
        assert_eq!(claims["sub"], "mailto:ops@example.com");
        assert_eq!(claims["exp"], 1_000_000 + VAPID_LIFETIME_SECS);
    }

    #[test]
    fn endpoints_and_keys_are_checked() {
        assert!(check_endpoint("https://push.example.net/x", false).is_ok());
        assert!(check_endpoint("http://127.0.0.1:9/x", true).is_ok());
        for bad in [
            "http://push.example.net/x",
            "ftp://push.example.net/x",
            "https://user:pw@push.example.net/x",
            "https:///x",
            "not a url",
            &format!("https://push.example.net/{}", "a".repeat(MAX_ENDPOINT)),
        ] {
            assert!(check_endpoint(bad, false).is_err(), "{bad}");
        }
        let (secret, _) = rfc_keys();
        let point = secret.public_key().to_encoded_point(false);
        assert!(check_keys(point.as_bytes(), &[1; 16]).is_ok());
        assert!(check_keys(point.as_bytes(), &[1; 15]).is_err());
        let compressed = secret.public_key().to_encoded_point(true);
        assert!(check_keys(compressed.as_bytes(), &[1; 16]).is_err());
        let mut off_curve = point.as_bytes().to_vec();
        off_curve[64] ^= 1;
        assert!(check_keys(&off_curve, &[1; 16]).is_err());
    }
}

//! A thin typed wrapper over the server's HTTP API (`docs/API.md`): requests and error mapping,
//! nothing trusted.

use keyhole_core::DeviceId;
use keyhole_core::device_proof::{self, Challenge, DeviceProof, Request};
use keyhole_core::keys::DeviceSigningKey;
use keyhole_http::Endpoint;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::ClientError;

/// An enrolled device's key, as it proves requests.
#[derive(Clone, Copy)]
pub struct Prover<'a> {
    /// The device, as the roster lists it.
    pub device: DeviceId,
    /// Its signing key.
    pub key: &'a DeviceSigningKey,
}

/// A proven request's body.
#[derive(Debug)]
pub enum Body {
    /// None.
    Empty,
    /// Raw bytes (`application/octet-stream`).
    Bytes(Vec<u8>),
    /// JSON.
    Json(Value),
}

/// A challenge the server issued (`/v1/challenges`, `/v1/login/challenge`).
#[derive(serde::Deserialize)]
pub(crate) struct Issued {
    /// 64 hex digits.
    pub(crate) challenge: String,
}

/// The most of an answer read into memory (JSON, records, logs, events); footage is streamed.
pub const MAX_ANSWER: usize = 32 << 20;
/// The most of an error answer read.
const MAX_ERROR: usize = 64 << 10;

/// The body of `resp`, refused once longer than `max` bytes (by its `Content-Length`, or as
/// it arrives): a server cannot make the device hold more than that.
///
/// # Errors
/// [`ClientError::Untrusted`] for a longer body; [`ClientError::Http`] if the read fails.
pub async fn read_at_most(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, ClientError> {
    let too_long = || ClientError::Untrusted(format!("the server's answer is over {max} bytes"));
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_long());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > max {
            return Err(too_long());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A connection to one server, optionally with a bearer token.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl std::fmt::Debug for Api {
    // The token is a credential: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Api {
    /// Connects to `endpoint` (see `keyhole_http` for the TLS rules).
    ///
    /// # Errors
    /// [`ClientError::Transport`] if the endpoint is refused.
    pub fn new(endpoint: &Endpoint) -> Result<Self, ClientError> {
        Ok(Self {
            http: keyhole_http::client(endpoint)?,
            base: endpoint.url.trim_end_matches('/').to_owned(),
            token: None,
        })
    }

    /// The bearer token, if any.
    pub(crate) fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The same connection with `token` as its credential.
    #[must_use]
    pub fn with_token(&self, token: String) -> Self {
        Self {
            token: Some(token),
            ..self.clone()
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    async fn check(resp: reqwest::Response) -> Result<reqwest::Response, ClientError> {
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let body: Value = read_at_most(resp, MAX_ERROR)
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        let text = |k: &str| body[k].as_str().unwrap_or("unknown").to_owned();
        Err(ClientError::Server {
            status,
            code: text("error"),
            message: text("message"),
        })
    }

    /// `POST` a JSON body; the answer as JSON (or `Null` for an empty body).
    ///
    /// # Errors
    /// [`ClientError::Http`] or [`ClientError::Server`].
    pub async fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<T, ClientError> {
        let resp = self
            .request(reqwest::Method::POST, path)
            .json(body)
            .send()
            .await?;
        Self::json_answer(resp).await
    }

    /// `POST` raw bytes; the answer as JSON.
    ///
    /// # Errors
    /// [`ClientError::Http`] or [`ClientError::Server`].
    pub async fn post_bytes<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> Result<T, ClientError> {
        let resp = self
            .request(reqwest::Method::POST, path)
            .body(body)
            .send()
            .await?;
        Self::json_answer(resp).await
    }

    async fn json_answer<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T, ClientError> {
        let bytes = read_at_most(Self::check(resp).await?, MAX_ANSWER).await?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|e| ClientError::Untrusted(format!("not JSON: {e}")))?
        };
        serde_json::from_value(value)
            .map_err(|e| ClientError::Untrusted(format!("unexpected answer: {e}")))
    }

    /// Sends a request that must carry a device proof (PROTOCOL.md §17): asks the server for a
    /// challenge, signs the request under it with `prover`, and sends it once. The answer as
    /// JSON (`Null` for an empty body).
    ///
    /// # Errors
    /// [`ClientError::Http`], [`ClientError::Server`] (a refused proof is `device_proof`, an
    /// unlisted device `not_enrolled`) or [`ClientError::Untrusted`].
    pub async fn proven(
        &self,
        prover: Prover<'_>,
        method: reqwest::Method,
        path: &str,
        body: Body,
    ) -> Result<Value, ClientError> {
        let issued: Issued = self.post_json("/v1/challenges", &Value::Null).await?;
        self.send_proven(&issued.challenge, prover, method, path, body)
            .await
    }

    /// Sends a request proven under `challenge` (from `/v1/challenges` or
    /// `/v1/login/challenge`); the answer as JSON.
    ///
    /// # Errors
    /// As [`Api::proven`].
    pub(crate) async fn send_proven(
        &self,
        challenge: &str,
        prover: Prover<'_>,
        method: reqwest::Method,
        path: &str,
        body: Body,
    ) -> Result<Value, ClientError> {
        let challenge = Challenge::from_hex(challenge)
            .map_err(|e| ClientError::Untrusted(format!("the server's challenge: {e}")))?;
        let (bytes, json) = match body {
            Body::Empty => (Vec::new(), false),
            Body::Bytes(b) => (b, false),
            Body::Json(v) => (
                serde_json::to_vec(&v).map_err(|e| ClientError::Untrusted(e.to_string()))?,
                true,
            ),
        };
        let request = Request {
            method: method.as_str(),
            target: path,
            body: &bytes,
        };
        let proof = DeviceProof::sign(challenge, prover.device, prover.key, &request)
            .map_err(|e| ClientError::Untrusted(e.to_string()))?;
        let mut req = self
            .request(method, path)
            .header(device_proof::HEADER, proof.encode());
        if json {
            req = req.header(reqwest::header::CONTENT_TYPE, "application/json");
        }
        Self::json_answer(req.body(bytes).send().await?).await
    }

    /// `PUT` a JSON body.
    ///
    /// # Errors
    /// [`ClientError::Http`] or [`ClientError::Server`].
    pub async fn put_json(&self, path: &str, body: &Value) -> Result<(), ClientError> {
        Self::check(
            self.request(reqwest::Method::PUT, path)
                .json(body)
                .send()
                .await?,
        )
        .await?;
        Ok(())
    }

    /// `PUT` raw bytes.
    ///
    /// # Errors
    /// [`ClientError::Http`] or [`ClientError::Server`].
    pub async fn put_bytes(&self, path: &str, body: Vec<u8>) -> Result<(), ClientError> {
        Self::check(
            self.request(reqwest::Method::PUT, path)
                .body(body)
                .send()
                .await?,
        )
        .await?;
        Ok(())
    }

    /// `PUT` a body streamed as it is made; the answer as JSON.
    ///
    /// # Errors
    /// [`ClientError::Http`] or [`ClientError::Server`].
    pub async fn put_stream(&self, path: &str, body: reqwest::Body) -> Result<Value, ClientError> {
        let resp = Self::check(
            self.request(reqwest::Method::PUT, path)
                .body(body)
                .send()
                .await?,
        )
        .await?;
        Ok(resp.json().await?)
    }

    /// `DELETE`; the answer as JSON (or `Null` for an empty body).
    ///
    /// # Errors
    /// [`ClientError::Http`] or [`ClientError::Server`].
    pub async fn delete(&self, path: &str) -> Result<Value, ClientError> {
        let resp = Self::check(self.request(reqwest::Method::DELETE, path).send().await?).await?;
        let bytes = read_at_most(resp, MAX_ANSWER).await?;
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Untrusted(format!("not JSON: {e}")))
    }

    /// `GET` raw bytes.
    ///
    /// # Errors
    /// [`ClientError::Http`] or [`ClientError::Server`].
    pub async fn get_bytes(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        let resp = Self::check(self.request(reqwest::Method::GET, path).send().await?).await?;
        read_at_most(resp, MAX_ANSWER).await
    }

    /// `GET` JSON.
    ///
    /// # Errors
    /// [`ClientError::Http`], [`ClientError::Server`] or [`ClientError::Untrusted`].
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let resp = Self::check(self.request(reqwest::Method::GET, path).send().await?).await?;
        let bytes = read_at_most(resp, MAX_ANSWER).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Untrusted(format!("unexpected answer: {e}")))
    }

    /// `GET` a byte stream, for downloads that must not be held in memory.
    ///
    /// # Errors
    /// [`ClientError::Http`] or [`ClientError::Server`].
    pub async fn get_stream(&self, path: &str) -> Result<reqwest::Response, ClientError> {
        Self::check(self.request(reqwest::Method::GET, path).send().await?).await
    }

    /// `GET` bytes `range` of a resource; returns them and the resource's whole length (from
    /// `Content-Range`). A range past the end comes back cut at the end, as HTTP answers it.
    ///
    /// # Errors
    /// [`ClientError::Http`], [`ClientError::Server`], or [`ClientError::Untrusted`] if the
    /// answer is not exactly that range (cut at the resource's end).
    pub async fn get_range(
        &self,
        path: &str,
        range: std::ops::Range<u64>,
    ) -> Result<(Vec<u8>, u64), ClientError> {
        let untrusted = |why: &str| ClientError::Untrusted(format!("range answer: {why}"));
        if range.is_empty() {
            return Err(untrusted("an empty range was asked for"));
        }
        let resp = self
            .request(reqwest::Method::GET, path)
            .header(
                reqwest::header::RANGE,
                format!("bytes={}-{}", range.start, range.end - 1),
            )
            .send()
            .await?;
        let resp = Self::check(resp).await?;
        if resp.status() != reqwest::StatusCode::PARTIAL_CONTENT {
            return Err(untrusted("not partial content"));
        }
        let (span, total) = resp
            .headers()
            .get(reqwest::header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(keyhole_wire::range::parse_content_range)
            .and_then(|(span, total)| {
                (span == (range.start..range.end.min(total))).then_some((span, total))
            })
            .ok_or_else(|| untrusted("Content-Range is not the range asked for"))?;
        let wanted = usize::try_from(span.end - span.start).unwrap_or(usize::MAX);
        let body = read_at_most(resp, wanted).await?;
        if body.len() != wanted {
            return Err(untrusted("the body is not the range's length"));
        }
        Ok((body, total))
    }
}

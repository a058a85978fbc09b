//! A hostile server: an HTTP proxy on loopback in front of the real server that the test can
//! turn against its clients. Cameras and devices talk to the proxy's URL; the test adds rules
//! that send a request to another path (serve another object, an older record), rewrite a
//! response body (flip a byte, drop a chunk, hide a listing entry, substitute a key), or answer a
//! request itself (keep a second history for one client). Every applied rule is counted, so a
//! test can show the attack happened and was caught, not that it never took place.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use futures_util::TryStreamExt as _;

type Redirect = Box<dyn Fn(&Method, &str) -> Option<String> + Send + Sync>;
type Matches = Box<dyn Fn(&Method, &str) -> bool + Send + Sync>;
type Rewrite = Box<dyn Fn(&mut Vec<u8>) + Send + Sync>;
type Answer = Box<dyn Fn(&Method, &str, &[u8]) -> Option<(StatusCode, Vec<u8>)> + Send + Sync>;
/// Given a live session's prefix and one record (a frame or a checkpoint), what to pass on
/// instead: the record itself, others, or nothing.
type LiveRecords = Arc<dyn Fn(&[u8], &[u8]) -> Vec<Vec<u8>> + Send + Sync>;

#[derive(Default)]
struct Rules {
    redirects: Vec<Redirect>,
    rewrites: Vec<(Matches, Rewrite)>,
    answers: Vec<Answer>,
    cuts: Vec<(Matches, usize)>,
    delays: Vec<(Matches, std::time::Duration)>,
    live: Vec<(Matches, LiveRecords)>,
}

struct Shared {
    upstream: String,
    http: reqwest::Client,
    rules: Mutex<Rules>,
    applied: AtomicU64,
}

/// The proxy. Dropping it stops it.
pub struct HostileProxy {
    /// `http://127.0.0.1:<port>`: give this to cameras and devices instead of the server's URL.
    pub url: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Request headers passed upstream (the rest are hop-by-hop or set by the client).
const REQUEST_HEADERS: [&str; 6] = [
    "authorization",
    "content-type",
    "range",
    "upload-offset",
    "keyhole-proof",
    "keyhole-head",
];
/// Response headers passed back when the body is not rewritten.
const RESPONSE_HEADERS: [&str; 3] = ["content-type", "content-range", "content-length"];

impl HostileProxy {
    /// Starts an honest proxy to `upstream` (until rules are added).
    ///
    /// # Panics
    /// If no loopback port is free.
    pub async fn start(upstream: &str) -> Self {
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            rules: Mutex::new(Rules::default()),
            applied: AtomicU64::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("bound address"));
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(shared.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Self {
            url,
            shared,
            stop: Some(stop),
        }
    }

    fn rules(&self) -> std::sync::MutexGuard<'_, Rules> {
        self.shared
            .rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends requests for which `to` returns a path (with query) there instead.
    pub fn redirect(&self, to: impl Fn(&Method, &str) -> Option<String> + Send + Sync + 'static) {
        self.rules().redirects.push(Box::new(to));
    }

    /// Rewrites the body of responses to requests that `matches` (method, path with query).
    /// Matching responses are buffered whole; the rest stream through.
    pub fn rewrite(
        &self,
        matches: impl Fn(&Method, &str) -> bool + Send + Sync + 'static,
        body: impl Fn(&mut Vec<u8>) + Send + Sync + 'static,
    ) {
        self.rules()
            .rewrites
            .push((Box::new(matches), Box::new(body)));
    }

    /// Answers requests itself, never reaching the server: `answer` gets the method, the path
    /// with query and the request body, and returns the status and body to send back, or `None`
    /// to let the request through. For a server that keeps a second history for one client.
    pub fn answer(
        &self,
        answer: impl Fn(&Method, &str, &[u8]) -> Option<(StatusCode, Vec<u8>)> + Send + Sync + 'static,
    ) {
        self.rules().answers.push(Box::new(answer));
    }

    /// Ends the response to requests that `matches` after `bytes` of its body, cleanly, as a
    /// relay that stops passing a stream on would (the rest streams through until then).
    pub fn cut(
        &self,
        matches: impl Fn(&Method, &str) -> bool + Send + Sync + 'static,
        bytes: usize,
    ) {
        self.rules().cuts.push((Box::new(matches), bytes));
    }

    /// Holds back the response to requests that `matches` by `by`: each piece of its body
    /// reaches the client that long after it left the server (a relay that delays a live view).
    pub fn delay(
        &self,
        matches: impl Fn(&Method, &str) -> bool + Send + Sync + 'static,
        by: std::time::Duration,
    ) {
        self.rules().delays.push((Box::new(matches), by));
    }

    /// Passes the live stream of requests that `matches` (the session prefix, then records
    /// `index ‖ length ‖ body`) record by record through `records`, which gets the prefix and
    /// each record and returns what to send in its place.
    pub fn live_records(
        &self,
        matches: impl Fn(&Method, &str) -> bool + Send + Sync + 'static,
        records: impl Fn(&[u8], &[u8]) -> Vec<Vec<u8>> + Send + Sync + 'static,
    ) {
        self.rules()
            .live
            .push((Box::new(matches), Arc::new(records)));
    }

    /// Removes every rule: honest again.
    pub fn clear(&self) {
        *self.rules() = Rules::default();
    }

    /// How many times a rule was applied so far.
    #[must_use]
    pub fn applied(&self) -> u64 {
        self.shared.applied.load(Ordering::SeqCst)
    }
}

impl Drop for HostileProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn failure(e: impl std::fmt::Display) -> Response {
    let mut resp = Response::new(Body::from(format!("proxy: {e}")));
    *resp.status_mut() = StatusCode::BAD_GATEWAY;
    resp
}

/// `stream` up to `left` bytes, then a clean end (counted as an applied rule).
fn cut_after(
    stream: impl futures_util::Stream<Item = std::io::Result<axum::body::Bytes>>
    + Send
    + Unpin
    + 'static,
    left: usize,
    shared: Arc<Shared>,
) -> impl futures_util::Stream<Item = std::io::Result<axum::body::Bytes>> + Send + 'static {
    futures_util::stream::unfold((stream, left), move |(mut stream, left)| {
        let shared = shared.clone();
        async move {
            use futures_util::StreamExt as _;
            if left == 0 {
                shared.applied.fetch_add(1, Ordering::SeqCst);
                return None;
            }
            match stream.next().await? {
                Ok(mut chunk) => {
                    chunk.truncate(left);
                    let left = left - chunk.len();
                    Some((Ok(chunk), (stream, left)))
                }
                Err(e) => Some((Err(e), (stream, 0))),
            }
        }
    })
}

type ByteStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = std::io::Result<axum::body::Bytes>> + Send>>;

/// `stream` with each piece held back `by` after it arrived (counted once as applied).
fn delayed(
    mut stream: ByteStream,
    by: std::time::Duration,
    shared: Arc<Shared>,
) -> impl futures_util::Stream<Item = std::io::Result<axum::body::Bytes>> + Send + 'static {
    use futures_util::StreamExt as _;
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    tokio::spawn(async move {
        shared.applied.fetch_add(1, Ordering::SeqCst);
        while let Some(piece) = stream.next().await {
            if tx
                .send((tokio::time::Instant::now() + by, piece))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        let (due, piece) = rx.recv().await?;
        tokio::time::sleep_until(due).await;
        Some((piece, rx))
    })
}

/// `stream`, a live session, passed on record by record through `records`.
fn live_through(
    stream: ByteStream,
    records: LiveRecords,
    shared: Arc<Shared>,
) -> impl futures_util::Stream<Item = std::io::Result<axum::body::Bytes>> + Send + 'static {
    use futures_util::StreamExt as _;
    const HEADER: usize = keyhole_core::live::FRAME_HEADER_LEN;
    let prefix_len = keyhole_core::envelope::PREFIX_LEN;
    let state = (stream, Vec::new(), None::<Vec<u8>>);
    futures_util::stream::unfold(state, move |(mut stream, mut buf, mut prefix)| {
        let (records, shared) = (records.clone(), shared.clone());
        async move {
            loop {
                if prefix.is_none() && buf.len() >= prefix_len {
                    let rest = buf.split_off(prefix_len);
                    let head = std::mem::replace(&mut buf, rest);
                    prefix = Some(head.clone());
                    return Some((Ok(head.into()), (stream, buf, prefix)));
                }
                if let Some(p) = &prefix
                    && buf.len() >= HEADER
                {
                    let len = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize;
                    if buf.len() >= HEADER + len {
                        let rest = buf.split_off(HEADER + len);
                        let record = std::mem::replace(&mut buf, rest);
                        let out = records(p, &record);
                        if out != [record] {
                            shared.applied.fetch_add(1, Ordering::SeqCst);
                        }
                        return Some((Ok(out.concat().into()), (stream, buf, prefix)));
                    }
                }
                match stream.next().await? {
                    Ok(piece) => buf.extend_from_slice(&piece),
                    Err(e) => return Some((Err(e), (stream, buf, prefix))),
                }
            }
        }
    })
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let method = request.method().clone();
    let original = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let has_answers = !shared
        .rules
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .answers
        .is_empty();
    // With answer rules, the body is read whole first, to be answered or sent on.
    let (request, buffered) = if has_answers {
        let (parts, body) = request.into_parts();
        let bytes = match axum::body::to_bytes(body, usize::MAX).await {
            Ok(b) => b,
            Err(e) => return failure(e),
        };
        let answered = {
            let rules = shared.rules.lock().unwrap_or_else(PoisonError::into_inner);
            rules
                .answers
                .iter()
                .find_map(|a| a(&method, &original, &bytes))
        };
        if let Some((status, body)) = answered {
            shared.applied.fetch_add(1, Ordering::SeqCst);
            let mut resp = Response::new(Body::from(body));
            *resp.status_mut() = status;
            return resp;
        }
        (Request::from_parts(parts, Body::empty()), Some(bytes))
    } else {
        (request, None)
    };
    let (path, rewrite, cut, delay, live) = {
        let rules = shared.rules.lock().unwrap_or_else(PoisonError::into_inner);
        let redirected = rules.redirects.iter().find_map(|r| r(&method, &original));
        let path = redirected.unwrap_or_else(|| original.clone());
        let rewrite = rules
            .rewrites
            .iter()
            .position(|(matches, _)| matches(&method, &original));
        let cut = rules
            .cuts
            .iter()
            .find(|(matches, _)| matches(&method, &original))
            .map(|(_, bytes)| *bytes);
        let delay = rules
            .delays
            .iter()
            .find(|(matches, _)| matches(&method, &original))
            .map(|(_, by)| *by);
        let live = rules
            .live
            .iter()
            .find(|(matches, _)| matches(&method, &original))
            .map(|(_, records)| records.clone());
        (path, rewrite, cut, delay, live)
    };
    if path != original {
        shared.applied.fetch_add(1, Ordering::SeqCst);
    }
    let mut upstream = shared
        .http
        .request(method.clone(), format!("{}{path}", shared.upstream));
    for name in REQUEST_HEADERS {
        if let Some(value) = request.headers().get(name) {
            upstream = upstream.header(name, value);
        }
    }
    let upstream = match buffered {
        Some(bytes) => upstream.body(bytes),
        None => upstream.body(reqwest::Body::wrap_stream(
            request.into_body().into_data_stream(),
        )),
    };
    let answer = match upstream.send().await {
        Ok(a) => a,
        Err(e) => return failure(e),
    };
    let status = answer.status();
    let mut headers = HeaderMap::new();
    for name in RESPONSE_HEADERS {
        if let Some(value) = answer.headers().get(name) {
            headers.insert(name, value.clone());
        }
    }
    let body = match rewrite {
        Some(i) => {
            let mut bytes = match answer.bytes().await {
                Ok(b) => b.to_vec(),
                Err(e) => return failure(e),
            };
            let before = bytes.clone();
            {
                let rules = shared.rules.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some((_, rewrite)) = rules.rewrites.get(i) {
                    rewrite(&mut bytes);
                }
            }
            if bytes != before {
                shared.applied.fetch_add(1, Ordering::SeqCst);
                headers.remove("content-length");
            }
            Body::from(bytes)
        }
        None => {
            let stream = Box::pin(answer.bytes_stream().map_err(std::io::Error::other));
            match (cut, delay, live) {
                (Some(bytes), _, _) => Body::from_stream(cut_after(stream, bytes, shared.clone())),
                (_, Some(by), _) => Body::from_stream(delayed(stream, by, shared.clone())),
                (_, _, Some(records)) => {
                    Body::from_stream(live_through(stream, records, shared.clone()))
                }
                _ => Body::from_stream(stream),
            }
        }
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}

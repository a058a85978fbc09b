//! Against the real server's self-signed HTTPS: the pinned fingerprint is accepted, any other is
//! refused, and plain HTTP is refused beyond loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use keyhole_http::{Endpoint, TransportError, client};
use keyhole_server::{AppState, Config, tls};

#[tokio::test]
async fn pinning_and_plain_http_rules() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    let t = tls::load_or_create(&config).unwrap();
    let state = AppState::open(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tls::serve_https(listener, state, t.config.clone(), async {
        let _ = rx.await;
    }));
    let url = format!("https://{addr}");
    let endpoint = |pin| Endpoint {
        url: url.clone(),
        pin,
        allow_plain_http: false,
    };

    let pinned = client(&endpoint(Some(t.fingerprint))).unwrap();
    assert_eq!(
        pinned
            .get(format!("{url}/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let mut wrong = t.fingerprint;
    wrong[0] ^= 1;
    let err = client(&endpoint(Some(wrong)))
        .unwrap()
        .get(format!("{url}/health"))
        .send()
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("not the pinned one"), "{err:?}");
    // Without a pin the self-signed certificate is not trusted.
    assert!(
        client(&endpoint(None))
            .unwrap()
            .get(format!("{url}/health"))
            .send()
            .await
            .is_err()
    );
    // A pinned client will not follow the server down to plain HTTP.
    assert!(
        pinned
            .get(format!("http://{addr}/health"))
            .send()
            .await
            .is_err()
    );

    // Plain HTTP: loopback only, unless the deployment says otherwise. No request is sent here.
    let plain = |url: &str, allow| {
        client(&Endpoint {
            url: url.into(),
            pin: None,
            allow_plain_http: allow,
        })
    };
    assert!(
        matches!(plain("http://192.0.2.1:8080", false), Err(TransportError::PlainHttp(h)) if h == "192.0.2.1")
    );
    assert!(matches!(
        plain("http://camera.example", false),
        Err(TransportError::PlainHttp(_))
    ));
    assert!(plain("http://192.0.2.1:8080", true).is_ok());
    assert!(plain("http://127.0.0.1:8080", false).is_ok());
    assert!(plain("http://[::1]:8080", false).is_ok());
    assert!(matches!(
        plain("ftp://example.org", false),
        Err(TransportError::BadUrl(_))
    ));
    assert!(matches!(
        plain("example.org", false),
        Err(TransportError::BadUrl(_))
    ));
    // A loopback address before an `@` is a user name; the host is the one after it.
    for sneaky in [
        "http://[::1]:80@example.org/",
        "http://127.0.0.1@example.org/",
    ] {
        assert!(
            matches!(plain(sneaky, false), Err(TransportError::BadUrl(_))),
            "{sneaky}"
        );
    }
    assert!(matches!(
        plain("http://127.0.0.1.example.org/", false),
        Err(TransportError::PlainHttp(_))
    ));

    let _ = tx.send(());
    server.await.unwrap();
}

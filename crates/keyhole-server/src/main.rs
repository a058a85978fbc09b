//! `keyhole-server`: run the server, or check its storage.
// Doc comments below are the command-line help text, where backticks would show.
#![allow(clippy::doc_markdown)]

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use keyhole_server::{AppState, Config, check};

/// Keyhole's server: stores and relays end-to-end encrypted video it cannot open.
///
/// With no arguments it serves on 127.0.0.1:8443 with the embedded storage (SQLite and a local
/// folder) in the default data folder. Settings come from the defaults, then the TOML config
/// file, then KEYHOLE_* environment variables, then flags. Logs go to stderr; KEYHOLE_LOG sets the
/// filter (default info) and KEYHOLE_LOG_FORMAT=json makes them JSON lines.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// TOML config file. Keys: listen, data_dir, insecure_http, tls_cert, tls_key, tls_names,
    /// max_object_bytes, max_record_bytes, max_pairing_ttl_secs, retention_sweep_secs,
    /// database_url (postgres://…: metadata in PostgreSQL instead of SQLite), s3 (a table of
    /// bucket, endpoint, region, access_key_id, secret_access_key, allow_http: blobs in an
    /// S3-compatible bucket instead of the data folder), advertise_url (this server's URL as
    /// the others on the same database reach it: live view relayed between them), peers (the
    /// other servers' advertise_url, a list: the only places live view is fetched from),
    /// keep_alive_secs (the announcement channel's keep-alive, 1 to 30, default 15),
    /// push_contact (a mailto: or https: URL sent to push services with each Web Push),
    /// push_allow_http (take http:// push endpoints; default false), max_connections (most
    /// connections open at once, default 4096), abandoned_upload_secs (how long a partial
    /// upload must go unwritten to count against its camera's 16, default 60). Each key
    /// can also be set by an environment variable, KEYHOLE_ and the key in capitals (for example
    /// KEYHOLE_MAX_OBJECT_BYTES=1000000, KEYHOLE_INSECURE_HTTP=true), which wins over the file.
    #[arg(long, env = "KEYHOLE_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8443].
    #[arg(long, global = true)]
    listen: Option<std::net::SocketAddr>,
    /// Folder for the database and blobs [default: $XDG_DATA_HOME/keyhole-server or
    /// ~/.local/share/keyhole-server].
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Serve plain HTTP: only for loopback tests or behind a TLS-terminating proxy.
    #[arg(long, global = true)]
    insecure_http: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Verify storage: every object row has its blob with the recorded size and digest, and
    /// every blob has a row. Exits 1 if anything is wrong.
    Check,
    /// Copy the embedded installation (the SQLite file and the blob folder in the data folder)
    /// into the stores the configuration names: blobs into the [s3] bucket if set, then the
    /// metadata into the empty PostgreSQL database at database_url (or --to), in one
    /// transaction. Stop the server first; then start the servers with that configuration.
    /// Blobs already in the bucket with the right size are skipped, so an interrupted copy can
    /// be run again.
    Migrate {
        /// The PostgreSQL database, instead of database_url: postgres://user:pw@host:port/db.
        #[arg(long = "to", value_name = "URL")]
        to: Option<String>,
    },
    /// Print the SHA-256 fingerprint of the TLS certificate (made on first use if self-signed),
    /// which pairing codes carry so cameras and clients can pin it.
    Fingerprint,
}

/// `keyhole-server migrate`: blobs first, so the copied metadata never names a blob the new
/// stores lack.
async fn migrate(config: &Config) -> anyhow::Result<()> {
    use keyhole_server::blobs::{BlobStore, FsBlobStore, s3::S3BlobStore};
    anyhow::ensure!(
        config.database_url.is_some() || config.s3.is_some(),
        "nothing to migrate to: set database_url (or --to) and/or [s3] in the configuration"
    );
    let path = config.data_dir.join("keyhole.sqlite3");
    anyhow::ensure!(
        path.exists(),
        "no embedded installation at {}",
        path.display()
    );
    if let Some(s3) = &config.s3 {
        let source = FsBlobStore::open(&config.data_dir.join("blobs")).await?;
        let target = S3BlobStore::open(s3)
            .await
            .with_context(|| format!("opening S3 bucket {}", s3.bucket))?;
        let keys = source.keys().await?;
        let (mut copied, mut skipped) = (0, 0);
        for (done, key) in keys.iter().enumerate() {
            let size = source
                .size(key)
                .await?
                .context("a blob vanished during the copy")?;
            if target.size(key).await? == Some(size) {
                skipped += 1;
            } else {
                keyhole_server::blobs::copy(&source, &target, key, size).await?;
                copied += 1;
            }
            if (done + 1) % 100 == 0 {
                println!("blobs: {} of {}", done + 1, keys.len());
            }
        }
        println!(
            "blobs: {copied} copied to bucket {}, {skipped} already there",
            s3.bucket
        );
    }
    if let Some(url) = &config.database_url {
        let source = keyhole_server::store::SqlStore::open_sqlite(&path).await?;
        let target = keyhole_server::store::SqlStore::open_postgres(url.expose()).await?;
        source
            .copy_to_postgres(&target, |table, rows| println!("{table}: {rows} rows"))
            .await?;
        println!("copied {} into PostgreSQL", path.display());
    }
    println!("start the servers with this configuration to use the new stores");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // Logs go to stderr: human-readable, or one JSON object per line with KEYHOLE_LOG_FORMAT=json.
    // They never contain tokens, passwords or object contents.
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYHOLE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only on a terminal: a log file or journal gets plain text.
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if std::env::var("KEYHOLE_LOG_FORMAT").is_ok_and(|f| f == "json") {
        logs.json().init();
    } else {
        logs.init();
    }
    let cli = Cli::parse();
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(l) = cli.listen {
        config.listen = l;
    }
    if let Some(d) = cli.data_dir {
        config.data_dir = d;
    }
    config.insecure_http |= cli.insecure_http;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(config).await,
            Command::Fingerprint => {
                std::fs::create_dir_all(&config.data_dir)
                    .with_context(|| format!("creating {}", config.data_dir.display()))?;
                let tls = keyhole_server::tls::load_or_create(&config)?;
                println!("{}", hex::encode(tls.fingerprint));
                Ok(())
            }
            Command::Migrate { to } => {
                if let Some(url) = to {
                    config.database_url = Some(keyhole_server::config::Secret::new(url));
                }
                migrate(&config).await
            }
            Command::Check => {
                let state = AppState::open(config).await?;
                let report = check::run(&state).await?;
                println!("{} objects checked", report.objects);
                for (what, ids) in [
                    ("missing blob", &report.missing_blobs),
                    ("corrupt blob", &report.corrupt_blobs),
                    ("blob without a row", &report.orphan_blobs),
                ] {
                    for id in ids {
                        println!("{what}: {id}");
                    }
                }
                if report.is_clean() {
                    println!("storage is consistent");
                    Ok(())
                } else {
                    std::process::exit(1);
                }
            }
        }
    })
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // Each connection is a file: room for max_connections, with some to spare for the database,
    // blobs and logs. The soft limit is often far below the hard one.
    let wanted = u64::try_from(config.max_connections)
        .unwrap_or(u64::MAX)
        .saturating_add(256);
    match rlimit::increase_nofile_limit(wanted) {
        Ok(got) if got < wanted => tracing::warn!(
            open_files = got,
            max_connections = config.max_connections,
            "the open-file limit is below what max_connections needs; connections past it wait"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let insecure = config.insecure_http;
    if insecure && !addr.ip().is_loopback() {
        tracing::warn!(%addr, "serving plain HTTP on a non-loopback address: only safe behind a TLS-terminating proxy");
    }
    let data_dir = config.data_dir.clone();
    let state = AppState::open(config).await?;
    tokio::spawn(sweep_retention(state.clone()));
    let shutdown = stop_signal();
    if insecure {
        tracing::info!(%addr, data = %data_dir.display(), "serving plain HTTP");
        println!("keyhole-server listening on http://{addr} (plain HTTP)");
        keyhole_server::serve_http(listener, state, shutdown).await?;
    } else {
        let tls = keyhole_server::tls::load_or_create(&state.config)?;
        tracing::info!(%addr, data = %data_dir.display(), "serving HTTPS");
        println!("keyhole-server listening on https://{addr}");
        if tls.self_signed {
            println!(
                "self-signed certificate, SHA-256 fingerprint {}",
                hex::encode(tls.fingerprint)
            );
        }
        keyhole_server::tls::serve_https(listener, state, tls.config, shutdown).await;
    }
    Ok(())
}

/// Ctrl-C, or SIGTERM (what service managers send): in-flight requests finish, then it exits.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    tokio::signal::ctrl_c().await.ok();
}

/// Deletes what the owners' retention floors let go, and prunes abandoned partial uploads and
/// old attempt counts, now and then, for as long as the server runs.
async fn sweep_retention(state: AppState) {
    let every = std::time::Duration::from_secs(state.config.retention_sweep_secs.max(1));
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        // Partial uploads a camera has not resumed for a day are abandoned.
        match state
            .blobs
            .prune_partials(std::time::Duration::from_secs(86_400))
            .await
        {
            Ok(n) if n > 0 => tracing::info!(pruned = n, "stale partial uploads removed"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "pruning partial uploads failed"),
        }
        match keyhole_server::retention::sweep(&state).await {
            Ok(Some(s)) if s.objects > 0 => {
                tracing::info!(objects = s.objects, bytes = s.bytes, "retention sweep");
            }
            Ok(Some(_)) => {}
            Ok(None) => tracing::debug!("another server is sweeping"),
            Err(e) => tracing::error!(error = %e, "retention sweep failed"),
        }
        // Login and account-creation counts whose windows have passed.
        if let Err(e) = keyhole_server::auth::prune_attempts(&state).await {
            tracing::error!(error = %e, "pruning attempt counts failed");
        }
    }
}

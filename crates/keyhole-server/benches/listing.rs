//! Listing one camera's objects among 1,000,000 stored (1,000 cameras × 1,000 clips), through
//! the server's metadata store on SQLite and, when installed, on a throwaway PostgreSQL server.
//!
//! `cargo bench -p keyhole-server --bench listing` prints one table: latency percentiles of a
//! page of 100 objects after a random sequence number, of the objects in a one-hour window,
//! and, as the baseline in the same run, of looking one object up by id.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use std::time::{Duration, Instant};

use keyhole_server::store::{MetaStore, SqlStore};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use sqlx::AnyPool;

const CAMERAS: u32 = 1_000;
const CLIPS_PER_CAMERA: u32 = 1_000;
const QUERIES: usize = 2_000;
const ACCOUNT: [u8; 16] = [1; 16];
/// 2026-11-01, and a clip every 10 minutes from then on.
const START_MS: i64 = 1_793_491_200_000;
const EVERY_MS: i64 = 600_000;

fn camera_id(c: u32) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&c.to_be_bytes());
    id[15] = 0xca;
    id
}

fn object_id(c: u32, seq: u32) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&c.to_be_bytes());
    id[4..8].copy_from_slice(&seq.to_be_bytes());
    id[15] = 0x0b;
    id
}

/// Writes the rows straight through SQL in a few large statements: a million calls through
/// the store would time the loading, not the listing.
async fn populate(pool: &AnyPool) {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO accounts (id, username, password_hash, created_at) VALUES ($1, 'bench', 'x', 0)",
    )
    .bind(&ACCOUNT[..])
    .execute(&mut *tx)
    .await
    .unwrap();
    for c in 0..CAMERAS {
        sqlx::query(
            "INSERT INTO cameras (camera_id, account_id, camera_key, registration, token_id, \
             registered_at) VALUES ($1, $2, $3, $4, $5, 0)",
        )
        .bind(&camera_id(c)[..])
        .bind(&ACCOUNT[..])
        .bind(&[0u8; 32][..])
        .bind(&b"proof"[..])
        .bind(&camera_id(c)[..])
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    const ROWS: u32 = 500;
    let values: Vec<String> = (0..ROWS)
        .map(|r| {
            let p = r * 7;
            format!(
                "(${}, ${}, ${}, 1, ${}, 1, ${}, ${}, ${}, 0)",
                p + 1,
                p + 2,
                p + 3,
                p + 4,
                p + 5,
                p + 6,
                p + 7
            )
        })
        .collect();
    let insert = format!(
        "INSERT INTO objects (object_id, account_id, camera_id, kind, sequence, epoch, \
         captured_at, size, sha256, created_at) VALUES {}",
        values.join(", ")
    );
    for c in 0..CAMERAS {
        for first in (0..CLIPS_PER_CAMERA).step_by(ROWS as usize) {
            let mut q = sqlx::query(&insert);
            for seq in first..first + ROWS {
                q = q
                    .bind(object_id(c, seq).to_vec())
                    .bind(ACCOUNT.to_vec())
                    .bind(camera_id(c).to_vec())
                    .bind(i64::from(seq) + 1)
                    .bind(START_MS + i64::from(seq) * EVERY_MS)
                    .bind(2_000_000i64)
                    .bind([0u8; 32].to_vec());
            }
            q.execute(&mut *tx).await.unwrap();
        }
    }
    tx.commit().await.unwrap();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn time(mut query: impl AsyncFnMut(&mut ChaCha20Rng)) -> (Duration, Duration) {
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let mut took = Vec::with_capacity(QUERIES);
    for _ in 0..QUERIES {
        let start = Instant::now();
        query(&mut rng).await;
        took.push(start.elapsed());
    }
    took.sort_unstable();
    (percentile(&took, 0.5), percentile(&took, 0.99))
}

async fn measure(name: &str, store: &dyn MetaStore) {
    let random_camera = |rng: &mut ChaCha20Rng| camera_id(rng.next_u32() % CAMERAS);
    let (base50, base99) = time(async |rng| {
        let id = object_id(rng.next_u32() % CAMERAS, rng.next_u32() % CLIPS_PER_CAMERA);
        assert!(store.object(&id).await.unwrap().is_some());
    })
    .await;
    let (page50, page99) = time(async |rng| {
        let after = i64::from(rng.next_u32() % (CLIPS_PER_CAMERA - 100));
        let page = store
            .objects(&random_camera(rng), after, 0..i64::MAX, 100)
            .await
            .unwrap();
        assert_eq!(page.len(), 100);
    })
    .await;
    let (hour50, hour99) = time(async |rng| {
        let from = START_MS + i64::from(rng.next_u32() % (CLIPS_PER_CAMERA - 6)) * EVERY_MS;
        let hour = store
            .objects(&random_camera(rng), 0, from..from + 3_600_000, 100)
            .await
            .unwrap();
        assert_eq!(hour.len(), 6);
    })
    .await;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    for (what, p50, p99) in [
        ("one object by id (baseline)", base50, base99),
        ("a page of 100 after a sequence number", page50, page99),
        ("the objects of one hour", hour50, hour99),
    ] {
        println!(
            "| {name} | {what} | {:.3} | {:.3} | {:.2} |",
            ms(p50),
            ms(p99),
            ms(p99) / ms(base99)
        );
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    sqlx::any::install_default_drivers();
    let total = u64::from(CAMERAS) * u64::from(CLIPS_PER_CAMERA);
    println!("{total} objects, {QUERIES} queries each, one at a time");
    println!();
    println!("| store | query | p50 ms | p99 ms | p99 ratio to baseline |");
    println!("|---|---|---:|---:|---:|");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyhole.sqlite3");
    let store = SqlStore::open_sqlite(&path).await.unwrap();
    let pool = AnyPool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    populate(&pool).await;
    pool.close().await;
    measure("SQLite", &store).await;

    match keyhole_testkit::postgres::Postgres::start() {
        Some(pg) => {
            let store = SqlStore::open_postgres(&pg.url).await.unwrap();
            let pool = AnyPool::connect(&pg.url).await.unwrap();
            populate(&pool).await;
            sqlx::query("ANALYZE").execute(&pool).await.unwrap();
            pool.close().await;
            measure("PostgreSQL", &store).await;
        }
        None => println!("| PostgreSQL | not installed: skipped | | | |"),
    }
}

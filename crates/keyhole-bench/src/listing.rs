//! Listing one camera's objects among 1,000,000 stored (1,000 cameras × 1,000 clips), through
//! the server's metadata store on SQLite and on a throwaway PostgreSQL server; the baseline is
//! looking one object up by its id, in the same run.

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{Context, ensure};
use keyhole_server::store::{MetaStore, SqlStore};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use sqlx::AnyPool;

use crate::stats::{Spread, ms};

const ACCOUNT: [u8; 16] = [1; 16];
/// 2026-11-01, and a clip every 10 minutes from then on.
const START_MS: i64 = 1_793_491_200_000;
const EVERY_MS: i64 = 600_000;
/// Rows per INSERT statement while loading.
const ROWS: u32 = 500;

#[derive(Clone, Copy)]
struct Scale {
    cameras: u32,
    clips_per_camera: u32,
    queries: usize,
}

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

/// Writes the rows straight through SQL in large statements: a million calls through the store
/// would time the loading, not the listing.
async fn populate(pool: &AnyPool, scale: Scale) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO accounts (id, username, password_hash, created_at) VALUES ($1, 'bench', 'x', 0)",
    )
    .bind(&ACCOUNT[..])
    .execute(&mut *tx)
    .await?;
    for c in 0..scale.cameras {
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
        .await?;
    }
    let rows = ROWS.min(scale.clips_per_camera);
    let values: Vec<String> = (0..rows)
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
         captured_at, size, summary, created_at) VALUES {}",
        values.join(", ")
    );
    for c in 0..scale.cameras {
        for first in (0..scale.clips_per_camera).step_by(rows as usize) {
            let mut q = sqlx::query(&insert);
            for seq in first..first + rows {
                q = q
                    .bind(object_id(c, seq).to_vec())
                    .bind(ACCOUNT.to_vec())
                    .bind(camera_id(c).to_vec())
                    .bind(i64::from(seq) + 1)
                    .bind(START_MS + i64::from(seq) * EVERY_MS)
                    .bind(2_000_000i64)
                    // The object summary listings carry (PROTOCOL.md §7.12), at its real size.
                    .bind(vec![0u8; keyhole_core::envelope::SUMMARY_LEN]);
            }
            q.execute(&mut *tx).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

async fn time(
    queries: usize,
    mut query: impl AsyncFnMut(&mut ChaCha20Rng) -> anyhow::Result<()>,
) -> anyhow::Result<Spread> {
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let mut took = Vec::with_capacity(queries);
    for _ in 0..queries {
        let start = Instant::now();
        query(&mut rng).await?;
        took.push(start.elapsed());
    }
    Ok(Spread::of(&took))
}

async fn measure(
    name: &str,
    store: &dyn MetaStore,
    scale: Scale,
    t: &mut String,
) -> anyhow::Result<()> {
    let Scale {
        cameras,
        clips_per_camera: clips,
        queries,
    } = scale;
    let random_camera = |rng: &mut ChaCha20Rng| camera_id(rng.next_u32() % cameras);
    let base = time(queries, async |rng| {
        let id = object_id(rng.next_u32() % cameras, rng.next_u32() % clips);
        ensure!(
            store.object(&id).await?.is_some(),
            "a stored object not found"
        );
        Ok(())
    })
    .await?;
    let page = time(queries, async |rng| {
        let after = i64::from(rng.next_u32() % (clips - 100));
        let page = store
            .objects(&random_camera(rng), after, 0..i64::MAX, 100)
            .await?;
        ensure!(
            page.len() == 100,
            "a page of {} objects, not 100",
            page.len()
        );
        Ok(())
    })
    .await?;
    let hour = time(queries, async |rng| {
        let from = START_MS + i64::from(rng.next_u32() % (clips - 6)) * EVERY_MS;
        let hour = store
            .objects(&random_camera(rng), 0, from..from + 3_600_000, 100)
            .await?;
        ensure!(hour.len() == 6, "{} objects in an hour, not 6", hour.len());
        Ok(())
    })
    .await?;
    for (what, s) in [
        ("one object by id (baseline)", base),
        ("a page of 100 after a sequence number", page),
        ("the objects of one hour", hour),
    ] {
        writeln!(
            t,
            "| {name} | {what} | {:.3} | {:.3} | {:.2} |",
            ms(s.p50),
            ms(s.p99),
            ms(s.p99) / ms(base.p99)
        )?;
    }
    Ok(())
}

pub async fn run(quick: bool) -> anyhow::Result<String> {
    sqlx::any::install_default_drivers();
    let scale = if quick {
        Scale {
            cameras: 20,
            clips_per_camera: 500,
            queries: 200,
        }
    } else {
        Scale {
            cameras: 1_000,
            clips_per_camera: 1_000,
            queries: 2_000,
        }
    };
    let total = u64::from(scale.cameras) * u64::from(scale.clips_per_camera);
    let mut t = String::new();
    writeln!(
        t,
        "{total} objects ({} cameras × {} clips), {} queries each, one at a time.\n",
        scale.cameras, scale.clips_per_camera, scale.queries
    )?;
    writeln!(
        t,
        "| store | query | p50 ms | p99 ms | p99 ratio to baseline |"
    )?;
    writeln!(t, "|---|---|---:|---:|---:|")?;

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("keyhole.sqlite3");
    let store = SqlStore::open_sqlite(&path).await?;
    let pool = AnyPool::connect(&format!("sqlite://{}", path.display())).await?;
    populate(&pool, scale).await.context("loading SQLite")?;
    pool.close().await;
    measure("SQLite", &store, scale, &mut t).await?;

    match keyhole_testkit::postgres::Postgres::start() {
        Some(pg) => {
            let store = SqlStore::open_postgres(&pg.url).await?;
            let pool = AnyPool::connect(&pg.url).await?;
            populate(&pool, scale).await.context("loading PostgreSQL")?;
            sqlx::query("ANALYZE").execute(&pool).await?;
            pool.close().await;
            measure("PostgreSQL", &store, scale, &mut t).await?;
        }
        None => writeln!(t, "| PostgreSQL | not installed: skipped | | | |")?,
    }
    Ok(t)
}

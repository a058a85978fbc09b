//! The metadata store in SQL, on the embedded SQLite file or on PostgreSQL, through sqlx's
//! `Any` driver: one implementation, in the SQL both accept (`$N` parameters, `ON CONFLICT`,
//! explicit casts where PostgreSQL would widen a type). SQLite runs in WAL mode with
//! `synchronous = FULL`, so a committed row survives power loss.

use std::path::Path;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

use super::{
    AccountId, AuditEntry, CameraRow, Credential, Deleted, EnrollmentRow, EnrollmentStep, Inserted,
    LogAppend, Logged, MetaStore, ObjectRow, PushSubscription, PushTarget, StoreError, Subject,
};

/// SQL implementation of [`MetaStore`].
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    /// Which database: transactions start differently (see [`SqlStore::begin_write`]).
    postgres: bool,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

fn arr<const N: usize>(v: &[u8], what: &str) -> Result<[u8; N], StoreError> {
    v.try_into()
        .map_err(|_| StoreError::Backend(anyhow::anyhow!("stored {what} has the wrong length")))
}

fn unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

fn subject_parts(s: Subject) -> (&'static str, [u8; 16]) {
    match s {
        Subject::Device(id) => ("device", id),
        Subject::Camera(id) => ("camera", id),
    }
}

const ENROLLMENT_COLUMNS: &str = "enrollment_id, account_id, device_id, created_at, expires_at, \
     request, answer, reveal, grant_body, closed_at";

fn enrollment_row(row: &AnyRow) -> Result<EnrollmentRow, StoreError> {
    Ok(EnrollmentRow {
        enrollment_id: arr(row.get::<&[u8], _>("enrollment_id"), "enrollment id")?,
        account_id: arr(row.get::<&[u8], _>("account_id"), "account id")?,
        device_id: arr(row.get::<&[u8], _>("device_id"), "device id")?,
        created_at: row.get("created_at"),
        expires_at: row.get("expires_at"),
        request: row.get("request"),
        answer: row.get("answer"),
        reveal: row.get("reveal"),
        grant: row.get("grant_body"),
        closed_at: row.get("closed_at"),
    })
}

impl SqlStore {
    /// Opens (creating if needed) the SQLite database at `path` and applies migrations.
    ///
    /// # Errors
    /// If the file cannot be opened or a migration fails.
    pub async fn open_sqlite(path: &Path) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                    )
                    .await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .with_context(|| format!("opening database {}", path.display()))?;
        SQLITE_MIGRATIONS
            .run(&pool)
            .await
            .context("applying database migrations")?;
        Ok(Self {
            pool,
            postgres: false,
        })
    }

    /// Connects to the PostgreSQL database at `url` (`postgres://…`) and applies migrations;
    /// several servers may share it.
    ///
    /// # Errors
    /// If the database cannot be reached or a migration fails.
    pub async fn open_postgres(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(16)
            .connect(url)
            .await
            .context("connecting to PostgreSQL")?;
        POSTGRES_MIGRATIONS
            .run(&pool)
            .await
            .context("applying database migrations")?;
        Ok(Self {
            pool,
            postgres: true,
        })
    }

    /// Starts a transaction that reads and then writes. SQLite takes its write lock at the
    /// start (`BEGIN IMMEDIATE`, waiting up to the busy timeout), so two such transactions run
    /// one after the other instead of the second failing. PostgreSQL runs at READ COMMITTED,
    /// where two can both pass the same check; with `lock`, they first take an advisory lock
    /// on that name and key (released at commit or rollback).
    async fn begin_write(
        &self,
        lock: Option<(&str, &[u8])>,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        if !self.postgres {
            return Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?);
        }
        let mut tx = self.pool.begin().await?;
        if let Some((what, key)) = lock {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(format!("{what}:{}", hex::encode(key)))
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }
}

/// A lock from [`MetaStore::try_lock`]: on PostgreSQL, the connection holding a session-level
/// advisory lock, closed (never returned to the pool still locked) when dropped.
#[derive(Debug)]
pub struct Held {
    _connection: Option<sqlx::pool::PoolConnection<sqlx::Any>>,
}

/// Every table of the schema, parents before children (the order rows can be copied in).
const TABLES: [&str; 23] = [
    "accounts",
    "challenges",
    "account_keys",
    "credentials",
    "push_key",
    "push_subscriptions",
    "rosters",
    "cameras",
    "camera_records",
    "key_packages",
    "recovery_backups",
    "pairing_tokens",
    "objects",
    "audit",
    "retention_floors",
    "enrollments",
    "log_entries",
    "log_heads",
    "share_consents",
    "shares",
    "share_members",
    "acceptances",
    "attempts",
];

impl SqlStore {
    /// Copies every row of this SQLite store into `target`, a PostgreSQL store with no
    /// accounts yet, in one transaction there, calling `progress` with each table's name and
    /// row count. Audit ids are kept, so clients reading the log on go on where they were.
    ///
    /// # Errors
    /// If this is not SQLite or `target` not PostgreSQL, `target` already holds accounts, the
    /// schemas differ from what this version knows, or either database fails; `target` is
    /// then unchanged.
    pub async fn copy_to_postgres(
        &self,
        target: &SqlStore,
        mut progress: impl FnMut(&str, u64),
    ) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.postgres && target.postgres,
            "copying goes from SQLite to PostgreSQL"
        );
        let mut source = self.pool.begin().await?; // one snapshot of every table
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name",
        )
        .fetch_all(&mut *source)
        .await?;
        let mut known: Vec<&str> = TABLES.to_vec();
        known.sort_unstable();
        anyhow::ensure!(
            tables == known,
            "the database has tables {tables:?}; this version copies {known:?}"
        );
        let mut tx = target.pool.begin().await?;
        let accounts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts")
            .fetch_one(&mut *tx)
            .await?;
        anyhow::ensure!(
            accounts == 0,
            "the PostgreSQL database already holds {accounts} account(s); copy into an empty one"
        );
        for table in TABLES {
            let columns: Vec<(String, String)> =
                sqlx::query_as("SELECT name, type FROM pragma_table_info($1) ORDER BY cid")
                    .bind(table)
                    .fetch_all(&mut *source)
                    .await?;
            let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
            let list = names.join(", ");
            let params: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
            let insert = format!(
                "INSERT INTO {table} ({list}) OVERRIDING SYSTEM VALUE VALUES ({})",
                params.join(", ")
            );
            let rows = sqlx::query(&format!("SELECT {list} FROM {table} ORDER BY rowid"))
                .fetch_all(&mut *source)
                .await?;
            for row in &rows {
                let mut q = sqlx::query(&insert);
                for (i, (name, kind)) in columns.iter().enumerate() {
                    q = match kind.as_str() {
                        "BLOB" => q.bind(row.try_get::<Option<Vec<u8>>, _>(i)?),
                        "INTEGER" => q.bind(row.try_get::<Option<i64>, _>(i)?),
                        "TEXT" => q.bind(row.try_get::<Option<String>, _>(i)?),
                        other => anyhow::bail!("{table}.{name} has type {other}, unknown here"),
                    };
                }
                q.execute(&mut *tx).await?;
            }
            progress(table, rows.len() as u64);
        }
        // The audit log's id sequence continues after the copied ids.
        sqlx::query(
            "SELECT setval(pg_get_serial_sequence('audit', 'id'), \
             COALESCE((SELECT MAX(id) FROM audit), 0) + 1, false)",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The two version-chained tables: rows only ever get newer.
#[derive(Clone, Copy)]
enum Versioned {
    Roster,
    CameraRecord,
    Share,
    Acceptance,
    Retention,
}

impl Versioned {
    /// (table, key column, name for messages)
    fn parts(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Roster => ("rosters", "account_id", "roster"),
            Self::CameraRecord => ("camera_records", "camera_id", "camera record"),
            Self::Share => ("shares", "camera_id", "share statement"),
            Self::Acceptance => ("acceptances", "account_id", "acceptance statement"),
            Self::Retention => ("retention_floors", "camera_id", "retention floor"),
        }
    }
}

impl SqlStore {
    /// Inserts `body` as `version` of `key` if it is newer than every stored version, in one
    /// transaction so two writers cannot both succeed with the same version.
    async fn insert_newer_version(
        &self,
        kind: Versioned,
        key: &[u8; 16],
        version: i64,
        body: &[u8],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write(Some((kind.parts().0, &key[..]))).await?;
        insert_newer_version_in(&mut tx, kind, key, version, body).await?;
        tx.commit().await?;
        Ok(())
    }
}

impl SqlStore {
    /// The body of `version` of `key`'s statement of this kind, or of its newest version.
    async fn version_body(
        &self,
        kind: Versioned,
        key: &[u8; 16],
        version: Option<i64>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let (table, column, _) = kind.parts();
        let body = match version {
            Some(v) => {
                sqlx::query_scalar(&format!(
                    "SELECT body FROM {table} WHERE {column} = $1 AND version = $2"
                ))
                .bind(&key[..])
                .bind(v)
                .fetch_optional(&self.pool)
                .await?
            }
            None => {
                sqlx::query_scalar(&format!(
                    "SELECT body FROM {table} WHERE {column} = $1 ORDER BY version DESC LIMIT 1"
                ))
                .bind(&key[..])
                .fetch_optional(&self.pool)
                .await?
            }
        };
        Ok(body)
    }
}

/// [`SqlStore::insert_newer_version`] within the caller's transaction.
async fn insert_newer_version_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    kind: Versioned,
    key: &[u8; 16],
    version: i64,
    body: &[u8],
) -> Result<(), StoreError> {
    let (table, column, what) = kind.parts();
    let latest: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT MAX(version) FROM {table} WHERE {column} = $1"
    ))
    .bind(&key[..])
    .fetch_one(&mut **tx)
    .await?;
    if latest.is_some_and(|l| version <= l) {
        return Err(StoreError::Conflict(format!(
            "{what} version {version} is not newer than the stored version"
        )));
    }
    sqlx::query(&format!(
        "INSERT INTO {table} ({column}, version, body) VALUES ($1, $2, $3)"
    ))
    .bind(&key[..])
    .bind(version)
    .bind(body)
    .execute(&mut **tx)
    .await
    .map_err(|e| {
        if unique_violation(&e) {
            StoreError::Conflict(format!(
                "{what} version {version} was just stored by another request"
            ))
        } else {
            e.into()
        }
    })?;
    Ok(())
}

fn camera_row(r: &AnyRow) -> Result<CameraRow, StoreError> {
    Ok(CameraRow {
        camera_id: arr(r.get::<&[u8], _>("camera_id"), "camera id")?,
        account_id: arr(r.get::<&[u8], _>("account_id"), "account id")?,
        camera_key: arr(r.get::<&[u8], _>("camera_key"), "camera key")?,
        registration: r.get("registration"),
        token_id: arr(r.get::<&[u8], _>("token_id"), "token id")?,
        registered_at: r.get("registered_at"),
        removed_at: r.get("removed_at"),
    })
}

fn object_row(r: &AnyRow) -> Result<ObjectRow, StoreError> {
    Ok(ObjectRow {
        object_id: arr(r.get::<&[u8], _>("object_id"), "object id")?,
        account_id: arr(r.get::<&[u8], _>("account_id"), "account id")?,
        camera_id: arr(r.get::<&[u8], _>("camera_id"), "camera id")?,
        kind: u8::try_from(r.get::<i64, _>("kind")).map_err(|e| StoreError::Backend(e.into()))?,
        sequence: r.get("sequence"),
        epoch: r.get("epoch"),
        captured_at: r.get("captured_at"),
        size: r.get("size"),
        summary: r.get::<Vec<u8>, _>("summary"),
        created_at: r.get("created_at"),
    })
}

const CAMERA_COLUMNS: &str =
    "camera_id, account_id, camera_key, registration, token_id, registered_at, removed_at";
const OBJECT_COLUMNS: &str = "object_id, account_id, camera_id, kind, sequence, epoch, captured_at, size, summary, created_at";

#[async_trait]
impl MetaStore for SqlStore {
    async fn try_lock(&self, name: &str) -> Result<Option<Held>, StoreError> {
        if !self.postgres {
            // One server per SQLite file: nobody else can hold it.
            return Ok(Some(Held { _connection: None }));
        }
        let mut connection = self.pool.acquire().await?;
        connection.close_on_drop();
        let taken: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                .bind(format!("lock:{name}"))
                .fetch_one(&mut *connection)
                .await?;
        Ok(taken.then_some(Held {
            _connection: Some(connection),
        }))
    }

    async fn create_account(
        &self,
        id: AccountId,
        username: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO accounts (id, username, password_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&id[..])
        .bind(username)
        .bind(password_hash)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if unique_violation(&e) {
                StoreError::Conflict("username is taken".into())
            } else {
                e.into()
            }
        })?;
        Ok(())
    }

    async fn account_by_username(
        &self,
        username: &str,
    ) -> Result<Option<(AccountId, String)>, StoreError> {
        let row = sqlx::query("SELECT id, password_hash FROM accounts WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok((
                arr(r.get::<&[u8], _>("id"), "account id")?,
                r.get("password_hash"),
            ))
        })
        .transpose()
    }

    async fn set_password(
        &self,
        account: &AccountId,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE accounts SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(&account[..])
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_challenge(
        &self,
        challenge: &[u8; 32],
        account: &AccountId,
        device: &[u8; 16],
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM challenges WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM challenges WHERE challenge IN (SELECT challenge FROM challenges \
             WHERE account_id = $1 AND device_id = $2 ORDER BY expires_at DESC LIMIT 1000000 OFFSET $3)",
        )
        .bind(&account[..])
        .bind(&device[..])
        .bind(super::MAX_OPEN_CHALLENGES - 1)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO challenges (challenge, account_id, device_id, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&challenge[..])
        .bind(&account[..])
        .bind(&device[..])
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn take_challenge(
        &self,
        challenge: &[u8; 32],
        account: &AccountId,
        device: &[u8; 16],
        now: i64,
    ) -> Result<bool, StoreError> {
        let taken = sqlx::query(
            "DELETE FROM challenges WHERE challenge = $1 AND account_id = $2 AND device_id = $3 \
             AND expires_at > $4",
        )
        .bind(&challenge[..])
        .bind(&account[..])
        .bind(&device[..])
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(taken.rows_affected() == 1)
    }

    async fn insert_credential(&self, c: &Credential) -> Result<(), StoreError> {
        let (kind, subject) = subject_parts(c.subject);
        sqlx::query("INSERT INTO credentials (token_hash, account_id, kind, subject, created_at, by_device_key) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&c.token_hash[..])
            .bind(&c.account_id[..])
            .bind(kind)
            .bind(&subject[..])
            .bind(c.created_at)
            .bind(i64::from(c.by_device_key))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn credential(&self, token_hash: &[u8; 32]) -> Result<Option<Credential>, StoreError> {
        let row = sqlx::query(
            "SELECT account_id, kind, subject, created_at, by_device_key FROM credentials WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(&token_hash[..])
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let subject = arr(r.get::<&[u8], _>("subject"), "subject")?;
            Ok(Credential {
                token_hash: *token_hash,
                account_id: arr(r.get::<&[u8], _>("account_id"), "account id")?,
                subject: match r.get::<&str, _>("kind") {
                    "camera" => Subject::Camera(subject),
                    _ => Subject::Device(subject),
                },
                created_at: r.get("created_at"),
                by_device_key: r.get::<i64, _>("by_device_key") != 0,
            })
        })
        .transpose()
    }

    async fn revoke_credential(&self, token_hash: &[u8; 32], now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE credentials SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(&token_hash[..])
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn revoke_subject(
        &self,
        account: &AccountId,
        subject: Subject,
        now: i64,
    ) -> Result<u64, StoreError> {
        let (kind, id) = subject_parts(subject);
        let done = sqlx::query(
            "UPDATE credentials SET revoked_at = $1 WHERE account_id = $2 AND kind = $3 AND subject = $4 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(&account[..])
        .bind(kind)
        .bind(&id[..])
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn put_roster(
        &self,
        account: &AccountId,
        version: i64,
        body: &[u8],
    ) -> Result<(), StoreError> {
        self.insert_newer_version(Versioned::Roster, account, version, body)
            .await
    }

    async fn roster(
        &self,
        account: &AccountId,
        version: Option<i64>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.version_body(Versioned::Roster, account, version).await
    }

    async fn create_pairing_token(
        &self,
        account: &AccountId,
        token_id: &[u8; 16],
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO pairing_tokens (token_id, account_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(&token_id[..])
        .bind(&account[..])
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if unique_violation(&e) {
                StoreError::Conflict("pairing token already exists".into())
            } else {
                e.into()
            }
        })?;
        Ok(())
    }

    async fn complete_pairing(
        &self,
        camera: &CameraRow,
        credential_hash: &[u8; 32],
        now: i64,
    ) -> Result<AccountId, StoreError> {
        let mut tx = self.begin_write(None).await?;
        let row = sqlx::query(
            "SELECT account_id, expires_at, used_at FROM pairing_tokens WHERE token_id = $1",
        )
        .bind(&camera.token_id[..])
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let account: AccountId = arr(row.get::<&[u8], _>("account_id"), "account id")?;
        if row.get::<Option<i64>, _>("used_at").is_some() {
            return Err(StoreError::Conflict(
                "pairing token was already used".into(),
            ));
        }
        if row.get::<i64, _>("expires_at") < now {
            return Err(StoreError::Conflict("pairing token has expired".into()));
        }
        let used = sqlx::query(
            "UPDATE pairing_tokens SET used_at = $1 WHERE token_id = $2 AND used_at IS NULL",
        )
        .bind(now)
        .bind(&camera.token_id[..])
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if used != 1 {
            return Err(StoreError::Conflict(
                "pairing token was already used".into(),
            ));
        }
        sqlx::query(&format!(
            "INSERT INTO cameras ({CAMERA_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, NULL)"
        ))
        .bind(&camera.camera_id[..])
        .bind(&account[..])
        .bind(&camera.camera_key[..])
        .bind(&camera.registration)
        .bind(&camera.token_id[..])
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if unique_violation(&e) {
                StoreError::Conflict("camera id is already registered".into())
            } else {
                e.into()
            }
        })?;
        sqlx::query("INSERT INTO credentials (token_hash, account_id, kind, subject, created_at) VALUES ($1, $2, 'camera', $3, $4)")
            .bind(&credential_hash[..])
            .bind(&account[..])
            .bind(&camera.camera_id[..])
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(account)
    }

    async fn camera(&self, camera_id: &[u8; 16]) -> Result<Option<CameraRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CAMERA_COLUMNS} FROM cameras WHERE camera_id = $1"
        ))
        .bind(&camera_id[..])
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(camera_row).transpose()
    }

    async fn put_camera_head(
        &self,
        camera_id: &[u8; 16],
        clock: i64,
        body: &[u8],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE cameras SET head = $1, head_clock = $2
             WHERE camera_id = $3 AND (head_clock IS NULL OR head_clock < $2)",
        )
        .bind(body)
        .bind(clock)
        .bind(&camera_id[..])
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn camera_head(&self, camera_id: &[u8; 16]) -> Result<Option<Vec<u8>>, StoreError> {
        let head: Option<Option<Vec<u8>>> =
            sqlx::query_scalar("SELECT head FROM cameras WHERE camera_id = $1")
                .bind(&camera_id[..])
                .fetch_optional(&self.pool)
                .await?;
        Ok(head.flatten())
    }

    async fn cameras(&self, account: &AccountId) -> Result<Vec<CameraRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CAMERA_COLUMNS} FROM cameras WHERE account_id = $1 ORDER BY registered_at"
        ))
        .bind(&account[..])
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(camera_row).collect()
    }

    async fn camera_by_token(
        &self,
        account: &AccountId,
        token_id: &[u8; 16],
    ) -> Result<Option<CameraRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CAMERA_COLUMNS} FROM cameras WHERE account_id = $1 AND token_id = $2"
        ))
        .bind(&account[..])
        .bind(&token_id[..])
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(camera_row).transpose()
    }

    async fn put_camera_record(
        &self,
        camera_id: &[u8; 16],
        version: i64,
        body: &[u8],
    ) -> Result<(), StoreError> {
        self.insert_newer_version(Versioned::CameraRecord, camera_id, version, body)
            .await
    }

    async fn camera_record(
        &self,
        camera_id: &[u8; 16],
        version: Option<i64>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.version_body(Versioned::CameraRecord, camera_id, version)
            .await
    }

    async fn append_log(&self, account: &AccountId, a: &LogAppend<'_>) -> Result<(), StoreError> {
        // One log lock per account: the statement tables' own checks run inside it.
        let mut tx = self.begin_write(Some(("log", &account[..]))).await?;
        let head: Option<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT sequence, hash FROM log_entries WHERE account_id = $1 \
             ORDER BY sequence DESC LIMIT 1",
        )
        .bind(&account[..])
        .fetch_optional(&mut *tx)
        .await?;
        let follows = match &head {
            None => a.sequence == 1,
            Some((sequence, hash)) => a.sequence == sequence + 1 && hash[..] == a.previous[..],
        };
        if !follows {
            let stored = head.map_or(0, |(s, _)| s);
            return Err(StoreError::Conflict(format!(
                "log entry {} does not follow the stored head (entry {stored}); \
                 read the log and try again",
                a.sequence
            )));
        }
        match a.statement {
            Logged::Roster { version, body } => {
                insert_newer_version_in(&mut tx, Versioned::Roster, account, version, body).await?;
            }
            Logged::CameraRecord {
                camera_id,
                version,
                body,
            } => {
                insert_newer_version_in(
                    &mut tx,
                    Versioned::CameraRecord,
                    &camera_id,
                    version,
                    body,
                )
                .await?;
            }
            Logged::Share {
                camera_id,
                version,
                body,
                members,
            } => {
                insert_newer_version_in(&mut tx, Versioned::Share, &camera_id, version, body)
                    .await?;
                sqlx::query("DELETE FROM share_members WHERE camera_id = $1")
                    .bind(&camera_id[..])
                    .execute(&mut *tx)
                    .await?;
                for (member, expires_at) in members {
                    sqlx::query(
                        "INSERT INTO share_members (camera_id, member_id, expires_at) \
                         VALUES ($1, $2, $3)",
                    )
                    .bind(&camera_id[..])
                    .bind(&member[..])
                    .bind(*expires_at)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            Logged::Retention {
                camera_id,
                version,
                body,
            } => {
                insert_newer_version_in(&mut tx, Versioned::Retention, &camera_id, version, body)
                    .await?;
            }
            Logged::Acceptance {
                version,
                body,
                owners,
            } => {
                insert_newer_version_in(&mut tx, Versioned::Acceptance, account, version, body)
                    .await?;
                sqlx::query("DELETE FROM share_consents WHERE member_id = $1")
                    .bind(&account[..])
                    .execute(&mut *tx)
                    .await?;
                for owner in owners {
                    sqlx::query("INSERT INTO share_consents (member_id, owner_id) VALUES ($1, $2)")
                        .bind(&account[..])
                        .bind(&owner[..])
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        if let Some(key) = a.account_key {
            sqlx::query("INSERT INTO account_keys (account_id, account_key) VALUES ($1, $2)")
                .bind(&account[..])
                .bind(&key[..])
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    if unique_violation(&e) {
                        StoreError::Conflict("another account has this account key".into())
                    } else {
                        e.into()
                    }
                })?;
        }
        sqlx::query(
            "INSERT INTO log_entries (account_id, sequence, hash, body) VALUES ($1, $2, $3, $4)",
        )
        .bind(&account[..])
        .bind(a.sequence)
        .bind(&a.hash[..])
        .bind(a.entry)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if unique_violation(&e) {
                StoreError::Conflict(format!(
                    "log entry {} was just written by another request",
                    a.sequence
                ))
            } else {
                e.into()
            }
        })?;
        tx.commit().await?;
        Ok(())
    }

    async fn log_entries(
        &self,
        account: &AccountId,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT body FROM log_entries WHERE account_id = $1 AND sequence > $2 \
             ORDER BY sequence LIMIT $3",
        )
        .bind(&account[..])
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn put_log_head(
        &self,
        account: &AccountId,
        device: &[u8; 16],
        body: &[u8],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO log_heads (account_id, device_id, body) VALUES ($1, $2, $3)
             ON CONFLICT (account_id, device_id) DO UPDATE SET body = excluded.body",
        )
        .bind(&account[..])
        .bind(&device[..])
        .bind(body)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn log_heads(&self, account: &AccountId) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT body FROM log_heads WHERE account_id = $1 ORDER BY device_id",
        )
        .bind(&account[..])
        .fetch_all(&self.pool)
        .await?)
    }

    async fn account_by_key(&self, key: &[u8; 32]) -> Result<Option<AccountId>, StoreError> {
        let id: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT account_id FROM account_keys WHERE account_key = $1")
                .bind(&key[..])
                .fetch_optional(&self.pool)
                .await?;
        id.map(|id| arr(&id, "account id")).transpose()
    }

    async fn account_key(&self, account: &AccountId) -> Result<Option<[u8; 32]>, StoreError> {
        let key: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT account_key FROM account_keys WHERE account_id = $1")
                .bind(&account[..])
                .fetch_optional(&self.pool)
                .await?;
        key.map(|k| arr(&k, "account key")).transpose()
    }

    async fn share_consent(
        &self,
        member: &AccountId,
        owner: &AccountId,
    ) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(1 AS BIGINT) FROM share_consents WHERE member_id = $1 AND owner_id = $2",
        )
        .bind(&member[..])
        .bind(&owner[..])
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    async fn acceptance(
        &self,
        account: &AccountId,
        version: Option<i64>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.version_body(Versioned::Acceptance, account, version)
            .await
    }

    async fn share(
        &self,
        camera_id: &[u8; 16],
        version: Option<i64>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.version_body(Versioned::Share, camera_id, version)
            .await
    }

    async fn share_member(
        &self,
        camera_id: &[u8; 16],
        member: &AccountId,
        now: i64,
    ) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(1 AS BIGINT) FROM share_members WHERE camera_id = $1 AND member_id = $2 \
             AND (expires_at IS NULL OR expires_at > $3)",
        )
        .bind(&camera_id[..])
        .bind(&member[..])
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    async fn put_key_package(
        &self,
        account: &AccountId,
        camera_id: &[u8; 16],
        epoch: i64,
        recipient: &[u8],
        body: &[u8],
        sealer: &[u8; 16],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO key_packages (account_id, camera_id, epoch, recipient, body, sealer) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (account_id, camera_id, epoch, recipient) DO UPDATE SET body = excluded.body, sealer = excluded.sealer",
        )
        .bind(&account[..])
        .bind(&camera_id[..])
        .bind(epoch)
        .bind(recipient)
        .bind(body)
        .bind(&sealer[..])
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn key_package_sealer(
        &self,
        account: &AccountId,
        camera_id: &[u8; 16],
        epoch: i64,
        recipient: &[u8],
    ) -> Result<Option<Option<Vec<u8>>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT sealer FROM key_packages WHERE account_id = $1 AND camera_id = $2 AND epoch = $3 AND recipient = $4",
        )
        .bind(&account[..])
        .bind(&camera_id[..])
        .bind(epoch)
        .bind(recipient)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn key_packages(
        &self,
        account: &AccountId,
        recipient: &[u8],
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(sqlx::query_scalar("SELECT body FROM key_packages WHERE account_id = $1 AND recipient = $2 ORDER BY camera_id, epoch")
            .bind(&account[..])
            .bind(recipient)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn put_recovery_backup(
        &self,
        account: &AccountId,
        body: &[u8],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO recovery_backups (account_id, body) VALUES ($1, $2)
             ON CONFLICT (account_id) DO UPDATE SET body = excluded.body",
        )
        .bind(&account[..])
        .bind(body)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn recovery_backup(&self, account: &AccountId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT body FROM recovery_backups WHERE account_id = $1")
                .bind(&account[..])
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn insert_object(&self, o: &ObjectRow) -> Result<Inserted, StoreError> {
        let result = sqlx::query(&format!(
            "INSERT INTO objects ({OBJECT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&o.object_id[..])
        .bind(&o.account_id[..])
        .bind(&o.camera_id[..])
        .bind(i64::from(o.kind))
        .bind(o.sequence)
        .bind(o.epoch)
        .bind(o.captured_at)
        .bind(o.size)
        .bind(&o.summary[..])
        .bind(o.created_at)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(Inserted::New),
            Err(e) if unique_violation(&e) => match self.object(&o.object_id).await? {
                Some(existing)
                    if existing.summary == o.summary && existing.camera_id == o.camera_id =>
                {
                    Ok(Inserted::AlreadyPresent)
                }
                _ => Err(StoreError::Conflict(
                    "another object with this id exists".into(),
                )),
            },
            Err(e) => Err(e.into()),
        }
    }

    async fn object(&self, object_id: &[u8; 16]) -> Result<Option<ObjectRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {OBJECT_COLUMNS} FROM objects WHERE object_id = $1"
        ))
        .bind(&object_id[..])
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(object_row).transpose()
    }

    async fn objects(
        &self,
        camera_id: &[u8; 16],
        after: i64,
        captured: std::ops::Range<i64>,
        limit: i64,
    ) -> Result<Vec<ObjectRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {OBJECT_COLUMNS} FROM objects WHERE camera_id = $1 AND sequence > $2
             AND captured_at >= $3 AND captured_at < $4 ORDER BY sequence, object_id LIMIT $5"
        ))
        .bind(&camera_id[..])
        .bind(after)
        .bind(captured.start)
        .bind(captured.end)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(object_row).collect()
    }

    async fn latest_object(&self, camera_id: &[u8; 16]) -> Result<Option<ObjectRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {OBJECT_COLUMNS} FROM objects WHERE camera_id = $1 ORDER BY sequence DESC LIMIT 1"
        ))
        .bind(&camera_id[..])
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(object_row).transpose()
    }

    async fn all_objects(&self) -> Result<Vec<ObjectRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {OBJECT_COLUMNS} FROM objects ORDER BY object_id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(object_row).collect()
    }

    async fn delete_object(&self, object_id: &[u8; 16]) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM objects WHERE object_id = $1")
            .bind(&object_id[..])
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
    async fn remove_camera(&self, camera_id: &[u8; 16], now: i64) -> Result<(), StoreError> {
        let mut tx = self.begin_write(None).await?;
        sqlx::query(
            "UPDATE cameras SET removed_at = COALESCE(removed_at, $1) WHERE camera_id = $2",
        )
        .bind(now)
        .bind(&camera_id[..])
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE credentials SET revoked_at = $1 WHERE kind = 'camera' AND subject = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(&camera_id[..])
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_camera(&self, camera_id: &[u8; 16]) -> Result<Deleted, StoreError> {
        let mut tx = self.begin_write(None).await?;
        let rows = sqlx::query("SELECT object_id, size FROM objects WHERE camera_id = $1")
            .bind(&camera_id[..])
            .fetch_all(&mut *tx)
            .await?;
        let mut deleted = Deleted::default();
        for r in &rows {
            deleted
                .objects
                .push(arr(r.get::<&[u8], _>("object_id"), "object id")?);
            deleted.bytes += r.get::<i64, _>("size");
        }
        sqlx::query("DELETE FROM objects WHERE camera_id = $1")
            .bind(&camera_id[..])
            .execute(&mut *tx)
            .await?;
        deleted.key_packages = sqlx::query("DELETE FROM key_packages WHERE camera_id = $1")
            .bind(&camera_id[..])
            .execute(&mut *tx)
            .await?
            .rows_affected();
        deleted.camera_records = sqlx::query("DELETE FROM camera_records WHERE camera_id = $1")
            .bind(&camera_id[..])
            .execute(&mut *tx)
            .await?
            .rows_affected();
        for table in ["share_members", "shares", "retention_floors"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE camera_id = $1"))
                .bind(&camera_id[..])
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM cameras WHERE camera_id = $1")
            .bind(&camera_id[..])
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted)
    }

    async fn audit(
        &self,
        account: &AccountId,
        at: i64,
        actor: &str,
        action: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit (account_id, at, actor, action, detail) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&account[..])
        .bind(at)
        .bind(actor)
        .bind(action)
        .bind(detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn audit_log(
        &self,
        account: &AccountId,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query("SELECT id, at, actor, action, detail FROM audit WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3")
            .bind(&account[..])
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| AuditEntry {
                id: r.get("id"),
                at: r.get("at"),
                actor: r.get("actor"),
                action: r.get("action"),
                detail: r.get("detail"),
            })
            .collect())
    }

    async fn retention_floor(
        &self,
        camera_id: &[u8; 16],
        version: Option<i64>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.version_body(Versioned::Retention, camera_id, version)
            .await
    }

    async fn retention_floors(&self) -> Result<Vec<([u8; 16], Vec<u8>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT f.camera_id, f.body FROM retention_floors f WHERE f.version = \
             (SELECT MAX(g.version) FROM retention_floors g WHERE g.camera_id = f.camera_id) \
             ORDER BY f.camera_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    arr(r.get::<&[u8], _>("camera_id"), "camera id")?,
                    r.get::<Vec<u8>, _>("body"),
                ))
            })
            .collect()
    }

    async fn create_enrollment(&self, e: &EnrollmentRow, max_open: i64) -> Result<(), StoreError> {
        let mut tx = self
            .begin_write(Some(("enrollments", &e.account_id[..])))
            .await?;
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM enrollments \
             WHERE account_id = $1 AND closed_at IS NULL AND expires_at >= $2",
        )
        .bind(&e.account_id[..])
        .bind(e.created_at)
        .fetch_one(&mut *tx)
        .await?;
        if open >= max_open {
            return Err(StoreError::Conflict(format!(
                "the account already has {open} device enrollments waiting; \
                 finish or cancel one first"
            )));
        }
        sqlx::query(&format!(
            "INSERT INTO enrollments ({ENROLLMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, NULL, NULL)"
        ))
        .bind(&e.enrollment_id[..])
        .bind(&e.account_id[..])
        .bind(&e.device_id[..])
        .bind(e.created_at)
        .bind(e.expires_at)
        .bind(&e.request)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn enrollment(
        &self,
        account: &AccountId,
        enrollment_id: &[u8; 16],
    ) -> Result<Option<EnrollmentRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {ENROLLMENT_COLUMNS} FROM enrollments WHERE account_id = $1 AND enrollment_id = $2"
        ))
        .bind(&account[..])
        .bind(&enrollment_id[..])
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(enrollment_row).transpose()
    }

    async fn open_enrollments(
        &self,
        account: &AccountId,
        now: i64,
    ) -> Result<Vec<EnrollmentRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ENROLLMENT_COLUMNS} FROM enrollments \
             WHERE account_id = $1 AND closed_at IS NULL AND expires_at >= $2 ORDER BY created_at"
        ))
        .bind(&account[..])
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(enrollment_row).collect()
    }

    async fn set_enrollment_step(
        &self,
        account: &AccountId,
        enrollment_id: &[u8; 16],
        step: EnrollmentStep,
        body: &[u8],
        now: i64,
    ) -> Result<(), StoreError> {
        let (column, after) = match step {
            EnrollmentStep::Answer => ("answer", "TRUE"),
            EnrollmentStep::Reveal => ("reveal", "answer IS NOT NULL"),
            EnrollmentStep::Grant => ("grant_body", "reveal IS NOT NULL"),
        };
        let done = sqlx::query(&format!(
            "UPDATE enrollments SET {column} = $1 WHERE account_id = $2 AND enrollment_id = $3 \
             AND {column} IS NULL AND {after} AND closed_at IS NULL AND expires_at >= $4"
        ))
        .bind(body)
        .bind(&account[..])
        .bind(&enrollment_id[..])
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if done == 1 {
            return Ok(());
        }
        let row = self
            .enrollment(account, enrollment_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let why = if row.closed_at.is_some() {
            "the enrollment was finished or cancelled"
        } else if row.expires_at < now {
            "the enrollment has expired; start again"
        } else if match step {
            EnrollmentStep::Answer => row.answer.is_some(),
            EnrollmentStep::Reveal => row.reveal.is_some(),
            EnrollmentStep::Grant => row.grant.is_some(),
        } {
            "that step of the enrollment was already taken"
        } else {
            "the step before this one has not happened yet"
        };
        Err(StoreError::Conflict(why.into()))
    }

    async fn close_enrollment(
        &self,
        account: &AccountId,
        enrollment_id: &[u8; 16],
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE enrollments SET closed_at = $1 \
             WHERE account_id = $2 AND enrollment_id = $3 AND closed_at IS NULL",
        )
        .bind(now)
        .bind(&account[..])
        .bind(&enrollment_id[..])
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    async fn push_key(&self, candidate: &[u8; 32]) -> Result<[u8; 32], StoreError> {
        sqlx::query(
            "INSERT INTO push_key (id, private_key) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&candidate[..])
        .execute(&self.pool)
        .await?;
        let key: Vec<u8> = sqlx::query_scalar("SELECT private_key FROM push_key WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        arr(&key, "push key")
    }

    async fn put_push_subscription(
        &self,
        s: &PushSubscription,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO push_subscriptions (token_hash, endpoint, p256dh, auth, created_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (token_hash) DO UPDATE SET endpoint = excluded.endpoint, \
             p256dh = excluded.p256dh, auth = excluded.auth, created_at = excluded.created_at",
        )
        .bind(&s.token_hash[..])
        .bind(&s.endpoint)
        .bind(&s.p256dh[..])
        .bind(&s.auth[..])
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_push_subscription(&self, token_hash: &[u8; 32]) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM push_subscriptions WHERE token_hash = $1")
            .bind(&token_hash[..])
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(done == 1)
    }

    async fn push_targets(
        &self,
        camera_id: &[u8; 16],
        account: &AccountId,
        now: i64,
    ) -> Result<Vec<PushTarget>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.token_hash, p.endpoint, p.p256dh, p.auth, c.account_id, c.subject \
             FROM push_subscriptions p JOIN credentials c ON c.token_hash = p.token_hash \
             WHERE c.revoked_at IS NULL AND c.kind = 'device' AND (c.account_id = $1 \
             OR c.account_id IN (SELECT member_id FROM share_members WHERE camera_id = $2 \
             AND (expires_at IS NULL OR expires_at > $3)))",
        )
        .bind(&account[..])
        .bind(&camera_id[..])
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PushTarget {
                    subscription: PushSubscription {
                        token_hash: arr(r.get::<&[u8], _>("token_hash"), "token hash")?,
                        endpoint: r.get("endpoint"),
                        p256dh: r.get::<&[u8], _>("p256dh").to_vec(),
                        auth: r.get::<&[u8], _>("auth").to_vec(),
                    },
                    account_id: arr(r.get::<&[u8], _>("account_id"), "account id")?,
                    device_id: arr(r.get::<&[u8], _>("subject"), "subject")?,
                })
            })
            .collect()
    }

    async fn count_attempt(&self, name: &str, now: i64, window_ms: i64) -> Result<i64, StoreError> {
        let tries: i64 = sqlx::query_scalar(
            "INSERT INTO attempts (name, tries, since) VALUES ($1, 1, $2) \
             ON CONFLICT (name) DO UPDATE SET \
             tries = CASE WHEN attempts.since <= $3 THEN 1 ELSE attempts.tries + 1 END, \
             since = CASE WHEN attempts.since <= $3 THEN $2 ELSE attempts.since END \
             RETURNING tries",
        )
        .bind(name)
        .bind(now)
        .bind(now.saturating_sub(window_ms))
        .fetch_one(&self.pool)
        .await?;
        Ok(tries)
    }

    async fn clear_attempts(&self, name: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM attempts WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn prune_attempts(&self, before: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM attempts WHERE since < $1")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}

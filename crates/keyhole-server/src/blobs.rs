//! Blob storage behind a trait, so the local folder and an S3 bucket ([`s3`]) serve the same
//! API.
//!
//! An upload is staged under a name the caller chooses (so a dropped upload can be resumed) in
//! `partial/`. On commit the local folder fsyncs it, renames it to `objects/<first byte>/<id>`,
//! and fsyncs the folder, in that order; only then does the caller commit the metadata row. A
//! crash at any point leaves at worst a partial upload (resumable, pruned when stale) or a blob
//! with no row (reported by `check`), never a row without its blob.

use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use tokio::fs;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

pub mod s3;

/// A blob being written; nothing is visible until [`StagedBlob::commit`].
#[async_trait]
pub trait StagedBlob: Send {
    /// Appends bytes.
    async fn write(&mut self, data: &[u8]) -> io::Result<()>;
    /// Makes the blob durable under `key`.
    async fn commit(self: Box<Self>, key: &[u8; 16]) -> io::Result<()>;
    /// Discards the blob.
    async fn abort(self: Box<Self>);
    /// Makes what was written so far durable and leaves it to be resumed.
    async fn keep(self: Box<Self>) -> io::Result<()>;
}

/// Where sealed objects live.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Starts writing the upload `name` from empty, discarding any earlier partial one.
    async fn stage(&self, name: &str) -> io::Result<Box<dyn StagedBlob>>;
    /// Reopens the partial upload `name` to append to it; returns it and its length.
    async fn resume(&self, name: &str) -> io::Result<Option<(Box<dyn StagedBlob>, u64)>>;
    /// The length of the partial upload `name`, if there is one.
    async fn partial_len(&self, name: &str) -> io::Result<Option<u64>>;
    /// Streams the partial upload `name` from its start.
    async fn read_partial(
        &self,
        name: &str,
    ) -> io::Result<BoxStream<'static, io::Result<bytes::Bytes>>>;
    /// Removes partial uploads untouched for longer than `age`; returns how many.
    async fn prune_partials(&self, age: std::time::Duration) -> io::Result<usize>;
    /// How many partial uploads have names starting with `prefix` and were last written to at
    /// least `idle` ago (abandoned, not in progress).
    async fn abandoned_count(&self, prefix: &str, idle: std::time::Duration) -> io::Result<usize>;
    /// Streams `range` of a blob.
    async fn read(
        &self,
        key: &[u8; 16],
        range: Range<u64>,
    ) -> io::Result<BoxStream<'static, io::Result<bytes::Bytes>>>;
    /// A blob's size, if it exists.
    async fn size(&self, key: &[u8; 16]) -> io::Result<Option<u64>>;
    /// Deletes a blob; deleting one that does not exist is not an error.
    async fn delete(&self, key: &[u8; 16]) -> io::Result<()>;
    /// Every blob's key.
    async fn keys(&self) -> io::Result<Vec<[u8; 16]>>;
}

/// Copies the blob `key` (of `size` bytes) from one store to another, checking that every byte
/// arrived.
///
/// # Errors
/// If reading, writing or committing fails, or the source yields a different length.
pub async fn copy(
    from: &dyn BlobStore,
    to: &dyn BlobStore,
    key: &[u8; 16],
    size: u64,
) -> io::Result<()> {
    use futures_util::StreamExt;
    let mut staged = to.stage(&hex::encode(key)).await?;
    let mut body = from.read(key, 0..size).await?;
    let mut copied = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                staged.abort().await;
                return Err(e);
            }
        };
        copied += chunk.len() as u64;
        staged.write(&chunk).await?;
    }
    if copied != size {
        staged.abort().await;
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "blob {} ended after {copied} of {size} bytes",
                hex::encode(key)
            ),
        ));
    }
    staged.commit(key).await
}

/// Blobs as files in a local folder.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    /// Opens the store in `root`, creating it.
    ///
    /// # Errors
    /// If the folders cannot be created.
    pub async fn open(root: &Path) -> io::Result<Self> {
        let store = Self {
            root: root.to_owned(),
        };
        fs::create_dir_all(store.root.join("partial")).await?;
        fs::create_dir_all(store.root.join("objects")).await?;
        Ok(store)
    }

    /// Where the partial upload `name` lives.
    fn partial(&self, name: &str) -> io::Result<PathBuf> {
        check_name(name)?;
        Ok(self.root.join("partial").join(name))
    }

    fn path(&self, key: &[u8; 16]) -> PathBuf {
        self.root
            .join("objects")
            .join(hex::encode(&key[..1]))
            .join(hex::encode(key))
    }
}

/// A blob's key from its name (its hex).
fn parse_key(name: &str) -> Option<[u8; 16]> {
    let mut key = [0u8; 16];
    hex::decode_to_slice(name, &mut key).ok()?;
    Some(key)
}

/// Upload names are the caller's hex ids (and dashes), checked so that no name can leave the
/// staging area.
fn check_name(name: &str) -> io::Result<()> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "bad upload name",
        ));
    }
    Ok(())
}

async fn sync_dir(path: PathBuf) -> io::Result<()> {
    tokio::task::spawn_blocking(move || std::fs::File::open(&path)?.sync_all())
        .await
        .map_err(io::Error::other)?
}

struct FsStaged {
    file: fs::File,
    tmp_path: PathBuf,
    store: FsBlobStore,
}

#[async_trait]
impl StagedBlob for FsStaged {
    async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data).await
    }

    async fn commit(mut self: Box<Self>, key: &[u8; 16]) -> io::Result<()> {
        self.file.flush().await?;
        self.file.sync_all().await?;
        let dest = self.store.path(key);
        let dir = dest
            .parent()
            .map(Path::to_owned)
            .unwrap_or_else(|| self.store.root.clone());
        let created = !fs::try_exists(&dir).await?;
        fs::create_dir_all(&dir).await?;
        fs::rename(&self.tmp_path, &dest).await?;
        sync_dir(dir).await?;
        if created {
            sync_dir(self.store.root.join("objects")).await?;
        }
        Ok(())
    }

    async fn keep(mut self: Box<Self>) -> io::Result<()> {
        self.file.flush().await?;
        self.file.sync_all().await
    }

    async fn abort(self: Box<Self>) {
        drop(self.file);
        if let Err(e) = fs::remove_file(&self.tmp_path).await {
            tracing::warn!(error = %e, "could not remove an aborted upload");
        }
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn stage(&self, name: &str) -> io::Result<Box<dyn StagedBlob>> {
        let tmp_path = self.partial(name)?;
        let file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp_path)
            .await?;
        Ok(Box::new(FsStaged {
            file,
            tmp_path,
            store: self.clone(),
        }))
    }

    async fn resume(&self, name: &str) -> io::Result<Option<(Box<dyn StagedBlob>, u64)>> {
        let tmp_path = self.partial(name)?;
        match fs::OpenOptions::new().append(true).open(&tmp_path).await {
            Ok(file) => {
                let len = file.metadata().await?.len();
                Ok(Some((
                    Box::new(FsStaged {
                        file,
                        tmp_path,
                        store: self.clone(),
                    }),
                    len,
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn partial_len(&self, name: &str) -> io::Result<Option<u64>> {
        match fs::metadata(self.partial(name)?).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn read_partial(
        &self,
        name: &str,
    ) -> io::Result<BoxStream<'static, io::Result<bytes::Bytes>>> {
        let file = fs::File::open(self.partial(name)?).await?;
        Ok(Box::pin(tokio_util::io::ReaderStream::with_capacity(
            file,
            64 * 1024,
        )))
    }

    async fn abandoned_count(&self, prefix: &str, idle: std::time::Duration) -> io::Result<usize> {
        let mut count = 0;
        let mut dir = fs::read_dir(self.root.join("partial")).await?;
        while let Some(entry) = dir.next_entry().await? {
            if !entry.file_name().to_string_lossy().starts_with(prefix) {
                continue;
            }
            // A file gone meanwhile (committed or pruned) is not abandoned.
            let Ok(meta) = entry.metadata().await else {
                continue;
            };
            if meta.modified()?.elapsed().is_ok_and(|e| e >= idle) || idle.is_zero() {
                count += 1;
            }
        }
        Ok(count)
    }

    async fn prune_partials(&self, age: std::time::Duration) -> io::Result<usize> {
        let mut pruned = 0;
        let mut dir = fs::read_dir(self.root.join("partial")).await?;
        while let Some(entry) = dir.next_entry().await? {
            let stale = entry
                .metadata()
                .await?
                .modified()?
                .elapsed()
                .is_ok_and(|e| e > age);
            if stale {
                fs::remove_file(entry.path()).await?;
                pruned += 1;
            }
        }
        Ok(pruned)
    }

    async fn read(
        &self,
        key: &[u8; 16],
        range: Range<u64>,
    ) -> io::Result<BoxStream<'static, io::Result<bytes::Bytes>>> {
        let mut file = fs::File::open(self.path(key)).await?;
        file.seek(io::SeekFrom::Start(range.start)).await?;
        let reader = file.take(range.end.saturating_sub(range.start));
        Ok(Box::pin(tokio_util::io::ReaderStream::with_capacity(
            reader,
            64 * 1024,
        )))
    }

    async fn size(&self, key: &[u8; 16]) -> io::Result<Option<u64>> {
        match fs::metadata(self.path(key)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn delete(&self, key: &[u8; 16]) -> io::Result<()> {
        match fs::remove_file(self.path(key)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn keys(&self) -> io::Result<Vec<[u8; 16]>> {
        let mut out = Vec::new();
        let mut shards = fs::read_dir(self.root.join("objects")).await?;
        while let Some(shard) = shards.next_entry().await? {
            let mut files = fs::read_dir(shard.path()).await?;
            while let Some(f) = files.next_entry().await? {
                match f.file_name().to_str().and_then(parse_key) {
                    Some(key) => out.push(key),
                    None => tracing::warn!(file = ?f.path(), "unexpected file in the blob folder"),
                }
            }
        }
        Ok(out)
    }
}

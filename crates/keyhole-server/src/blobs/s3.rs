//! Blobs in an S3-compatible bucket, which several servers can share.
//!
//! Layout: a committed blob is one object, `objects/<id hex>`. An upload in progress is a run of
//! part objects, `partial/<name>/<part number>`, each written whole by one PUT. S3's own
//! multipart uploads cannot be read back before they complete, and the server must re-read what
//! arrived before when an upload resumes (to verify it again), possibly on another server; part
//! objects can be.
//!
//! A staged upload buffers up to [`PART_BYTES`] in memory. An upload that never needed a part (a
//! typical clip) is committed with a single PUT of the buffer. Otherwise the last part is written,
//! then a one-part upload is copied inside the bucket, and a longer one is streamed back into an
//! S3 multipart upload of the final object; the parts are deleted after. Every step before the
//! final object exists leaves a resumable partial upload; a crash after it leaves parts that the
//! stale-partial pruning removes. Once the final object exists, the caller commits the row.

use std::io;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt, WriteMultipart};

use super::{BlobStore, StagedBlob, check_name, parse_key};
use crate::config::S3Config;

/// Bytes buffered before a part object is written; also the chunk size of the multipart upload
/// that joins parts on commit (S3's minimum part is 5 MiB).
pub const PART_BYTES: usize = 8 << 20;

/// Blobs in an S3 bucket.
#[derive(Debug, Clone)]
pub struct S3BlobStore {
    bucket: Arc<AmazonS3>,
}

impl S3BlobStore {
    /// Connects to the bucket `config` names. Credentials not given there come from the usual
    /// `AWS_*` environment variables.
    ///
    /// # Errors
    /// If the configuration is incomplete, or the bucket does not answer a listing.
    pub async fn open(config: &S3Config) -> io::Result<Self> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_allow_http(config.allow_http)
            .with_virtual_hosted_style_request(false);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(id) = &config.access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = &config.secret_access_key {
            builder = builder.with_secret_access_key(secret.expose());
        }
        let store = Self {
            bucket: Arc::new(builder.build().map_err(to_io)?),
        };
        // Fail at start, not on the first upload, when the bucket is wrong or unreachable.
        store
            .bucket
            .list_with_delimiter(Some(&Path::from("objects")))
            .await
            .map_err(to_io)?;
        Ok(store)
    }

    fn object(key: &[u8; 16]) -> Path {
        Path::from(format!("objects/{}", hex::encode(key)))
    }

    fn partial_dir(name: &str) -> io::Result<Path> {
        check_name(name)?;
        Ok(Path::from(format!("partial/{name}")))
    }

    /// The parts of the partial upload `name`, in order.
    async fn parts(&self, name: &str) -> io::Result<Vec<ObjectMeta>> {
        let dir = Self::partial_dir(name)?;
        let mut parts: Vec<ObjectMeta> = self
            .bucket
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(to_io)?;
        parts.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(parts)
    }

    async fn delete_all(&self, objects: Vec<ObjectMeta>) -> io::Result<()> {
        let locations = stream::iter(objects.into_iter().map(|o| Ok(o.location))).boxed();
        self.bucket
            .delete_stream(locations)
            .try_collect::<Vec<_>>()
            .await
            .map_err(to_io)?;
        Ok(())
    }

    /// Streams whole objects one after another.
    fn concat(&self, objects: Vec<ObjectMeta>) -> BoxStream<'static, io::Result<Bytes>> {
        let bucket = self.bucket.clone();
        stream::iter(objects)
            .then(move |o| {
                let bucket = bucket.clone();
                async move { bucket.get(&o.location).await.map_err(to_io) }
            })
            .map_ok(|got| got.into_stream().map_err(to_io))
            .try_flatten()
            .boxed()
    }
}

fn to_io(e: object_store::Error) -> io::Error {
    match e {
        object_store::Error::NotFound { .. } => io::Error::new(io::ErrorKind::NotFound, e),
        e => io::Error::other(e),
    }
}

struct S3Staged {
    store: S3BlobStore,
    name: String,
    dir: Path,
    /// Parts written so far.
    parts: u32,
    buffer: Vec<u8>,
}

impl S3Staged {
    /// Writes the buffer as the next part object.
    async fn write_part(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        // Fixed-width numbers so the parts list in order.
        let path = self.dir.clone().join(format!("{:08}", self.parts));
        let data = Bytes::from(std::mem::take(&mut self.buffer));
        self.store
            .bucket
            .put(&path, data.into())
            .await
            .map_err(to_io)?;
        self.parts += 1;
        Ok(())
    }
}

#[async_trait]
impl StagedBlob for S3Staged {
    async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= PART_BYTES {
            self.write_part().await?;
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>, key: &[u8; 16]) -> io::Result<()> {
        let dest = S3BlobStore::object(key);
        let bucket = self.store.bucket.clone();
        if self.parts == 0 {
            let data = Bytes::from(std::mem::take(&mut self.buffer));
            bucket.put(&dest, data.into()).await.map_err(to_io)?;
            return Ok(());
        }
        self.write_part().await?;
        let parts = self.store.parts(&self.name).await?;
        if let [only] = parts.as_slice() {
            bucket.copy(&only.location, &dest).await.map_err(to_io)?;
        } else {
            let upload = bucket.put_multipart(&dest).await.map_err(to_io)?;
            let mut joined = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
            let mut body = self.store.concat(parts.clone());
            let copied = async {
                while let Some(chunk) = body.next().await {
                    joined.wait_for_capacity(2).await.map_err(to_io)?;
                    joined.put(chunk?);
                }
                Ok::<_, io::Error>(())
            }
            .await;
            match copied {
                Ok(()) => {
                    joined.finish().await.map_err(to_io)?;
                }
                Err(e) => {
                    if let Err(abort) = joined.abort().await {
                        tracing::warn!(error = %abort, "could not abort a multipart upload");
                    }
                    return Err(e);
                }
            }
        }
        // The blob exists; leftover parts are only clutter, pruned once stale.
        if let Err(e) = self.store.delete_all(parts).await {
            tracing::warn!(error = %e, upload = %self.name, "could not delete the parts of a committed upload");
        }
        Ok(())
    }

    async fn abort(self: Box<Self>) {
        let parts = match self.store.parts(&self.name).await {
            Ok(parts) => parts,
            Err(e) => {
                tracing::warn!(error = %e, "could not list an aborted upload");
                return;
            }
        };
        if let Err(e) = self.store.delete_all(parts).await {
            tracing::warn!(error = %e, "could not remove an aborted upload");
        }
    }

    async fn keep(mut self: Box<Self>) -> io::Result<()> {
        self.write_part().await
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn stage(&self, name: &str) -> io::Result<Box<dyn StagedBlob>> {
        let dir = Self::partial_dir(name)?;
        let earlier = self.parts(name).await?;
        self.delete_all(earlier).await?;
        Ok(Box::new(S3Staged {
            store: self.clone(),
            name: name.to_owned(),
            dir,
            parts: 0,
            buffer: Vec::new(),
        }))
    }

    async fn resume(&self, name: &str) -> io::Result<Option<(Box<dyn StagedBlob>, u64)>> {
        let dir = Self::partial_dir(name)?;
        let parts = self.parts(name).await?;
        let Some(last) = parts.last() else {
            return Ok(None);
        };
        // Continue numbering after the last part, even if an earlier one is missing.
        let next = last
            .location
            .filename()
            .and_then(|n| n.parse::<u32>().ok())
            .map_or(u32::try_from(parts.len()).unwrap_or(u32::MAX), |n| {
                n.saturating_add(1)
            });
        let len = parts.iter().map(|p| p.size).sum();
        Ok(Some((
            Box::new(S3Staged {
                store: self.clone(),
                name: name.to_owned(),
                dir,
                parts: next,
                buffer: Vec::new(),
            }),
            len,
        )))
    }

    async fn partial_len(&self, name: &str) -> io::Result<Option<u64>> {
        let parts = self.parts(name).await?;
        Ok((!parts.is_empty()).then(|| parts.iter().map(|p| p.size).sum()))
    }

    async fn read_partial(&self, name: &str) -> io::Result<BoxStream<'static, io::Result<Bytes>>> {
        let parts = self.parts(name).await?;
        Ok(self.concat(parts))
    }

    async fn abandoned_count(&self, prefix: &str, idle: Duration) -> io::Result<usize> {
        let parts: Vec<ObjectMeta> = self
            .bucket
            .list(Some(&Path::from("partial")))
            .try_collect()
            .await
            .map_err(to_io)?;
        // An upload's last write is its newest part's.
        let mut newest: std::collections::BTreeMap<String, std::time::SystemTime> =
            std::collections::BTreeMap::new();
        for part in parts {
            let Some(name) = part.location.parts().nth(1).map(|n| n.as_ref().to_owned()) else {
                continue;
            };
            if name.starts_with(prefix) {
                let at = std::time::SystemTime::from(part.last_modified);
                let entry = newest.entry(name).or_insert(at);
                *entry = (*entry).max(at);
            }
        }
        Ok(newest
            .values()
            .filter(|at| idle.is_zero() || at.elapsed().is_ok_and(|e| e >= idle))
            .count())
    }

    async fn prune_partials(&self, age: Duration) -> io::Result<usize> {
        let all: Vec<ObjectMeta> = self
            .bucket
            .list(Some(&Path::from("partial")))
            .try_collect()
            .await
            .map_err(to_io)?;
        // Group parts by upload; an upload is stale when its newest part is.
        let mut uploads: std::collections::BTreeMap<String, Vec<ObjectMeta>> =
            std::collections::BTreeMap::new();
        for part in all {
            let name = part.location.parts().nth(1).map(|p| p.as_ref().to_owned());
            uploads
                .entry(name.unwrap_or_default())
                .or_default()
                .push(part);
        }
        let mut pruned = 0;
        for parts in uploads.into_values() {
            let newest = parts.iter().map(|p| p.last_modified).max();
            let stale = newest.is_some_and(|t| {
                std::time::SystemTime::from(t)
                    .elapsed()
                    .is_ok_and(|elapsed| elapsed > age)
            });
            if stale {
                self.delete_all(parts).await?;
                pruned += 1;
            }
        }
        Ok(pruned)
    }

    async fn read(
        &self,
        key: &[u8; 16],
        range: Range<u64>,
    ) -> io::Result<BoxStream<'static, io::Result<Bytes>>> {
        if range.is_empty() {
            return Ok(stream::empty().boxed());
        }
        let options = GetOptions {
            range: Some(GetRange::Bounded(range)),
            ..GetOptions::default()
        };
        let got = self
            .bucket
            .get_opts(&Self::object(key), options)
            .await
            .map_err(to_io)?;
        Ok(got.into_stream().map_err(to_io).boxed())
    }

    async fn size(&self, key: &[u8; 16]) -> io::Result<Option<u64>> {
        match self.bucket.head(&Self::object(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(to_io(e)),
        }
    }

    async fn delete(&self, key: &[u8; 16]) -> io::Result<()> {
        match self.bucket.delete(&Self::object(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(to_io(e)),
        }
    }

    async fn keys(&self) -> io::Result<Vec<[u8; 16]>> {
        let objects: Vec<ObjectMeta> = self
            .bucket
            .list(Some(&Path::from("objects")))
            .try_collect()
            .await
            .map_err(to_io)?;
        let mut keys = Vec::with_capacity(objects.len());
        for o in objects {
            match o.location.filename().and_then(parse_key) {
                Some(key) => keys.push(key),
                None => tracing::warn!(object = %o.location, "unexpected object in the bucket"),
            }
        }
        Ok(keys)
    }
}

//! The durable spool: sealed objects wait here, in sequence order, until the server has them.
//! An entry is written atomically before the chain moves past it, and removed only after the
//! server acknowledged it, so a crash or power loss at any point loses nothing that was sealed
//! and re-uploads at most one object, which the server recognises (uploads are idempotent).

use std::fs;
use std::path::{Path, PathBuf};

use keyhole_core::ObjectId;

use crate::store::{AtomicFile, StoreError};

/// One sealed object waiting for upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The object's sequence number in the camera's chain.
    pub sequence: u64,
    /// The object's id.
    pub object_id: ObjectId,
    /// Where it is.
    pub path: PathBuf,
    /// Its size in bytes.
    pub len: u64,
}

/// A sealed object being written into the spool (see [`Spool::create`]). Dropped without
/// [`SpoolFile::commit`], it leaves nothing behind.
#[derive(Debug)]
pub struct SpoolFile {
    file: AtomicFile,
    dropped: u64,
}

impl SpoolFile {
    /// Appends `bytes`.
    ///
    /// # Errors
    /// I/O failures.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.file.write(bytes)
    }

    /// Makes the object durable and part of the spool; returns how many old entries were
    /// dropped to make room for it.
    ///
    /// # Errors
    /// I/O failures; the object is then not in the spool.
    pub fn commit(self) -> Result<u64, StoreError> {
        self.file.commit()?;
        Ok(self.dropped)
    }
}

/// The spool folder and its size limit.
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

impl Spool {
    /// Opens (creating) the spool in `dir`, holding at most `max_bytes`. Leftover temporary
    /// files from an interrupted write are removed.
    ///
    /// # Errors
    /// I/O failures.
    pub fn open(dir: PathBuf, max_bytes: u64) -> Result<Self, StoreError> {
        fs::create_dir_all(dir.join("rejected")).map_err(io(&dir))?;
        for item in fs::read_dir(&dir).map_err(io(&dir))? {
            let path = item.map_err(io(&dir))?.path();
            if path.extension().is_some_and(|e| e == "tmp") {
                fs::remove_file(&path).map_err(io(&path))?;
            }
        }
        Ok(Self { dir, max_bytes })
    }

    /// Entries in sequence order.
    ///
    /// # Errors
    /// I/O failures.
    pub fn entries(&self) -> Result<Vec<Entry>, StoreError> {
        let mut out = Vec::new();
        for item in fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let item = item.map_err(io(&self.dir))?;
            let path = item.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Some(stem) = name.strip_suffix(".sealed") else {
                continue;
            };
            let Some((seq, id)) = stem.split_once('-') else {
                continue;
            };
            let (Ok(sequence), Ok(object_id)) = (seq.parse(), id.parse()) else {
                continue;
            };
            let len = item.metadata().map_err(io(&path))?.len();
            out.push(Entry {
                sequence,
                object_id,
                path,
                len,
            });
        }
        out.sort_by_key(|e| e.sequence);
        Ok(out)
    }

    /// Total bytes waiting.
    ///
    /// # Errors
    /// I/O failures.
    pub fn bytes(&self) -> Result<u64, StoreError> {
        Ok(self.entries()?.iter().map(|e| e.len).sum())
    }

    /// Adds a sealed object, first dropping the oldest entries if it would not fit. Returns how
    /// many were dropped; an object larger than the whole spool is refused.
    ///
    /// # Errors
    /// I/O failures, or an object larger than the spool.
    pub fn put(
        &self,
        sequence: u64,
        object_id: ObjectId,
        sealed: &[u8],
    ) -> Result<u64, StoreError> {
        let mut file = self.create(sequence, object_id, sealed.len() as u64)?;
        file.write(sealed)?;
        file.commit()
    }

    /// Starts writing a sealed object of `len` bytes, first dropping the oldest entries if it
    /// would not fit; it joins the spool when [`SpoolFile::commit`] succeeds, and not at all if
    /// dropped before. An object larger than the whole spool is refused.
    ///
    /// # Errors
    /// I/O failures, or an object larger than the spool.
    pub fn create(
        &self,
        sequence: u64,
        object_id: ObjectId,
        len: u64,
    ) -> Result<SpoolFile, StoreError> {
        let path = self.dir.join(format!("{sequence:020}-{object_id}.sealed"));
        if len > self.max_bytes {
            return Err(StoreError::Damaged {
                path,
                why: format!(
                    "a {len}-byte object is larger than the whole spool ({} bytes)",
                    self.max_bytes
                ),
            });
        }
        let mut entries = self.entries()?;
        let mut total: u64 = entries.iter().map(|e| e.len).sum();
        let mut dropped = 0;
        entries.reverse();
        while total + len > self.max_bytes {
            let Some(oldest) = entries.pop() else { break };
            fs::remove_file(&oldest.path).map_err(io(&oldest.path))?;
            total -= oldest.len;
            dropped += 1;
        }
        Ok(SpoolFile {
            file: AtomicFile::create(&path)?,
            dropped,
        })
    }

    /// Removes an entry the server acknowledged.
    ///
    /// # Errors
    /// I/O failures other than the entry being gone already.
    pub fn remove(&self, entry: &Entry) -> Result<(), StoreError> {
        match fs::remove_file(&entry.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&entry.path)(e)),
            _ => Ok(()),
        }
    }

    /// Moves an entry the server refused for good aside, kept for inspection.
    ///
    /// # Errors
    /// I/O failures.
    pub fn reject(&self, entry: &Entry) -> Result<(), StoreError> {
        let to = self.dir.join("rejected").join(
            entry
                .path
                .file_name()
                .unwrap_or_else(|| std::ffi::OsStr::new("unnamed")),
        );
        fs::rename(&entry.path, &to).map_err(io(&entry.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ObjectId {
        ObjectId([n; 16])
    }

    #[test]
    fn keeps_order_and_drops_the_oldest_when_full() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path().join("spool"), 250).unwrap();
        assert_eq!(spool.put(2, id(2), &[2; 100]).unwrap(), 0);
        assert_eq!(spool.put(10, id(10), &[10; 100]).unwrap(), 0);
        let seqs: Vec<u64> = spool
            .entries()
            .unwrap()
            .iter()
            .map(|e| e.sequence)
            .collect();
        assert_eq!(seqs, [2, 10]);
        assert_eq!(spool.put(11, id(11), &[11; 100]).unwrap(), 1);
        let entries = spool.entries().unwrap();
        assert_eq!(
            entries.iter().map(|e| e.sequence).collect::<Vec<_>>(),
            [10, 11]
        );
        assert_eq!(fs::read(&entries[0].path).unwrap(), [10; 100]);
        assert!(spool.put(12, id(12), &[0; 251]).is_err());
        spool.remove(&entries[0]).unwrap();
        spool.remove(&entries[0]).unwrap();
        spool.reject(&entries[1]).unwrap();
        assert!(spool.entries().unwrap().is_empty());
    }

    #[test]
    fn an_object_joins_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path().join("spool"), 1000).unwrap();
        let mut file = spool.create(1, id(1), 6).unwrap();
        file.write(b"sea").unwrap();
        assert!(spool.entries().unwrap().is_empty(), "not before commit");
        drop(file);
        assert_eq!(
            fs::read_dir(dir.path().join("spool")).unwrap().count(),
            1,
            "only rejected/"
        );
        let mut file = spool.create(1, id(1), 6).unwrap();
        file.write(b"sea").unwrap();
        file.write(b"led").unwrap();
        assert_eq!(file.commit().unwrap(), 0);
        let entries = spool.entries().unwrap();
        assert_eq!(fs::read(&entries[0].path).unwrap(), b"sealed");
    }

    #[test]
    fn reopening_clears_interrupted_writes() {
        let dir = tempfile::tempdir().unwrap();
        let spool_dir = dir.path().join("spool");
        let spool = Spool::open(spool_dir.clone(), 1000).unwrap();
        spool.put(1, id(1), b"sealed").unwrap();
        fs::write(spool_dir.join("00000000000000000002-x.sealed.tmp"), b"half").unwrap();
        let spool = Spool::open(spool_dir.clone(), 1000).unwrap();
        assert_eq!(spool.entries().unwrap().len(), 1);
        assert!(!spool_dir.join("00000000000000000002-x.sealed.tmp").exists());
    }
}

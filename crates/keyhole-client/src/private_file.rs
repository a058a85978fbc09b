//! Files only this user may read, written without following anything another user left in
//! the way: the key store, the recovery phrase, exported footage.
//!
//! Each is created exclusively (`O_CREAT | O_EXCL`: an existing file or a symbolic link planted
//! at the path makes the creation fail rather than write through it) with mode 0600, and a file
//! that replaces another is written beside it, flushed to disk and renamed over it, so a crash
//! leaves the old file or the new one, never half of one.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Creates `path`, which must not exist yet, readable and writable by this user only.
///
/// # Errors
/// An existing file or link at `path`, or any other failure to create it.
pub fn create(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// `path` with `suffix` appended to its file name (`video.mp4` → `video.mp4.partial`).
#[must_use]
pub fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Creates `path` as [`create`] does after removing what a crashed run left there: for work files
/// (a download in progress) whose leftovers are never worth keeping.
///
/// # Errors
/// As [`create`].
pub fn create_afresh(path: &Path) -> io::Result<File> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    create(path)
}

/// Replaces (or creates) `path` with `bytes` atomically: written to a private file beside it,
/// flushed, renamed over it, and the folder flushed.
///
/// # Errors
/// Any failure to write, flush or rename; `path` is then as it was.
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = beside(path, ".tmp");
    let mut file = create_afresh(&tmp)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    drop(file);
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        std::fs::remove_file(&tmp).ok();
        return Err(e);
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    File::open(dir.unwrap_or(Path::new(".")))?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_private_and_exclusively_and_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.keys");
        replace(&path, b"first").unwrap();
        replace(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert!(!beside(&path, ".tmp").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // An existing file is never written through.
        assert_eq!(
            create(&path).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        // Nor is a link another user planted where a work file goes.
        #[cfg(unix)]
        {
            let victim = dir.path().join("victim");
            std::fs::write(&victim, b"theirs").unwrap();
            let planted = dir.path().join("planted");
            std::os::unix::fs::symlink(&victim, &planted).unwrap();
            assert!(create(&planted).is_err());
            let mut fresh = create_afresh(&planted).unwrap();
            fresh.write_all(b"ours").unwrap();
            assert_eq!(std::fs::read(&victim).unwrap(), b"theirs");
        }
    }
}

//! The embedded blob store: one directory on local disk, a file per object.
//!
//! An object is written to a temporary file under `<root>/.tmp/`, flushed to disk, then renamed
//! into place, so a reader sees the old object or the new one, never a partial one. Creating only
//! if absent hard-links the temporary file into place, which fails when the name exists. All file
//! work runs on tokio's blocking pool.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use tracing::warn;

use crate::{
    BlobError, BlobStore, ListedObject, ObjectMeta, check_range_shape, validate_key,
    validate_prefix,
};

/// Directory (under the root) that holds files being written; its dot name can never be a key.
const TMP_DIR: &str = ".tmp";

/// Temporary files older than this are left over from a crash and are removed on open.
const STALE_TMP_AGE: Duration = Duration::from_secs(3600);

/// How often a write retries when a concurrent delete pruned the directory it was creating.
const PLACE_ATTEMPTS: usize = 3;

/// A blob store in a local directory. Keys map to relative paths under the root. Symbolic links
/// inside the root are not followed when listing.
#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    root: Arc<Path>,
}

impl LocalBlobStore {
    /// Opens the store at `dir`, creating the directory if needed, and removes temporary files
    /// that a crashed writer left behind more than an hour ago.
    pub async fn open(dir: impl Into<PathBuf>) -> Result<Self, BlobError> {
        let root: Arc<Path> = Arc::from(dir.into());
        let store = LocalBlobStore { root };
        let this = store.clone();
        blocking(move || {
            let tmp = this.root.join(TMP_DIR);
            fs::create_dir_all(&tmp).map_err(|e| this.unavailable("create", &tmp, &e))?;
            this.remove_stale_temp_files(&tmp);
            Ok(())
        })
        .await?;
        Ok(store)
    }

    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn unavailable(&self, action: &str, path: &Path, error: &io::Error) -> BlobError {
        BlobError::unavailable(format!(
            "local blob directory {}: cannot {action} {}: {error}",
            self.root.display(),
            path.display()
        ))
    }

    /// Maps a filesystem failure: a full, read-only or forbidden disk makes the store
    /// unavailable; anything else is unexpected.
    fn io_error(&self, action: &str, path: &Path, error: io::Error) -> BlobError {
        match error.kind() {
            io::ErrorKind::PermissionDenied
            | io::ErrorKind::StorageFull
            | io::ErrorKind::ReadOnlyFilesystem
            | io::ErrorKind::QuotaExceeded => self.unavailable(action, path, &error),
            _ => BlobError::other(format!(
                "local blob directory {}: cannot {action} {}: {error}",
                self.root.display(),
                path.display()
            )),
        }
    }

    fn object_path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    fn new_temp_path(&self) -> PathBuf {
        self.root
            .join(TMP_DIR)
            .join(format!("{}.part", uuid::Uuid::now_v7().simple()))
    }

    fn remove_stale_temp_files(&self, tmp: &Path) {
        let Ok(entries) = fs::read_dir(tmp) else {
            return;
        };
        let now = SystemTime::now();
        for entry in entries.flatten() {
            let age = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|modified| now.duration_since(modified).ok());
            if age.is_some_and(|age| age > STALE_TMP_AGE)
                && let Err(error) = fs::remove_file(entry.path())
            {
                warn!(path = %entry.path().display(), error = %error, "cannot remove stale blob temp file");
            }
        }
    }

    /// Writes `body` to a fresh temporary file and flushes it to disk.
    fn write_temp(&self, body: &[u8]) -> Result<PathBuf, BlobError> {
        let tmp_dir = self.root.join(TMP_DIR);
        fs::create_dir_all(&tmp_dir).map_err(|e| self.io_error("create", &tmp_dir, e))?;
        let path = self.new_temp_path();
        let result = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut file| {
                file.write_all(body)?;
                file.sync_all()
            });
        match result {
            Ok(()) => Ok(path),
            Err(error) => {
                let _ = fs::remove_file(&path);
                Err(self.io_error("write", &path, error))
            }
        }
    }

    /// Moves the temporary file to `key` with `place` (rename or hard link), creating parent
    /// directories and retrying when a concurrent delete removed them in between.
    fn place(
        &self,
        key: &str,
        tmp: &Path,
        place: impl Fn(&Path, &Path) -> io::Result<()>,
    ) -> io::Result<()> {
        let target = self.object_path(key);
        let parent = target.parent().unwrap_or(&self.root);
        let mut attempt = 0;
        loop {
            attempt += 1;
            if let Err(error) = fs::create_dir_all(parent) {
                // Some part of the path exists as an object (a file), not a directory.
                return Err(match error.kind() {
                    io::ErrorKind::AlreadyExists => io::ErrorKind::NotADirectory.into(),
                    _ => error,
                });
            }
            match place(tmp, &target) {
                Err(error)
                    if error.kind() == io::ErrorKind::NotFound && attempt < PLACE_ATTEMPTS => {}
                other => return other,
            }
        }
    }

    fn sync_parent(&self, key: &str) -> Result<(), BlobError> {
        let target = self.object_path(key);
        let parent = target.parent().unwrap_or(&self.root);
        File::open(parent)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| self.io_error("sync", parent, e))
    }

    fn place_error(&self, key: &str, error: io::Error) -> BlobError {
        match error.kind() {
            io::ErrorKind::NotADirectory
            | io::ErrorKind::IsADirectory
            | io::ErrorKind::DirectoryNotEmpty => BlobError::invalid_key(
                key,
                "it clashes with an existing key: in the local store a key cannot be both an \
                 object and the prefix of other objects",
            ),
            _ => self.io_error("write", &self.object_path(key), error),
        }
    }

    fn put_blocking(&self, key: &str, body: &[u8]) -> Result<(), BlobError> {
        let tmp = self.write_temp(body)?;
        if let Err(error) = self.place(key, &tmp, |from, to| fs::rename(from, to)) {
            let _ = fs::remove_file(&tmp);
            return Err(self.place_error(key, error));
        }
        self.sync_parent(key)
    }

    fn put_if_absent_blocking(&self, key: &str, body: &[u8]) -> Result<bool, BlobError> {
        let tmp = self.write_temp(body)?;
        // A hard link never replaces an existing name, so two racing creators cannot both win.
        let linked = self.place(key, &tmp, |from, to| fs::hard_link(from, to));
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => self.sync_parent(key).map(|()| true),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                if self.object_path(key).is_dir() {
                    Err(self.place_error(key, io::ErrorKind::IsADirectory.into()))
                } else {
                    Ok(false)
                }
            }
            Err(error) => Err(self.place_error(key, error)),
        }
    }

    /// Opens the object for reading; `None` when there is no object under `key`.
    fn open_object(&self, key: &str) -> Result<Option<(File, u64)>, BlobError> {
        let path = self.object_path(key);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(error) if is_missing(&error) => return Ok(None),
            Err(error) => return Err(self.io_error("open", &path, error)),
        };
        let meta = file
            .metadata()
            .map_err(|e| self.io_error("stat", &path, e))?;
        if !meta.is_file() {
            return Ok(None);
        }
        Ok(Some((file, meta.len())))
    }

    fn get_blocking(&self, key: &str) -> Result<Bytes, BlobError> {
        let Some((mut file, size)) = self.open_object(key)? else {
            return Err(BlobError::not_found(key));
        };
        let mut body = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        file.read_to_end(&mut body)
            .map_err(|e| self.io_error("read", &self.object_path(key), e))?;
        Ok(Bytes::from(body))
    }

    fn get_range_blocking(&self, key: &str, range: Range<u64>) -> Result<Bytes, BlobError> {
        let Some((mut file, size)) = self.open_object(key)? else {
            return Err(BlobError::not_found(key));
        };
        if range.start >= size {
            return Err(BlobError::InvalidRange {
                key: key.to_owned(),
                range,
                size: Some(size),
            });
        }
        let end = range.end.min(size);
        let len = usize::try_from(end - range.start)
            .map_err(|_| BlobError::other("range does not fit in memory"))?;
        let mut body = vec![0; len];
        file.seek(SeekFrom::Start(range.start))
            .and_then(|_| file.read_exact(&mut body))
            .map_err(|e| self.io_error("read", &self.object_path(key), e))?;
        Ok(Bytes::from(body))
    }

    fn head_blocking(&self, key: &str) -> Result<Option<ObjectMeta>, BlobError> {
        let path = self.object_path(key);
        match fs::metadata(&path) {
            Ok(meta) if meta.is_file() => Ok(Some(ObjectMeta {
                size: meta.len(),
                last_modified_ms: modified_ms(&meta),
            })),
            Ok(_) => Ok(None),
            Err(error) if is_missing(&error) => Ok(None),
            Err(error) => Err(self.io_error("stat", &path, error)),
        }
    }

    fn list_blocking(&self, prefix: &str) -> Result<Vec<ListedObject>, BlobError> {
        // Start from the deepest directory the prefix names completely.
        let dir_key = match prefix.rfind('/') {
            Some(slash) => &prefix[..slash],
            None => "",
        };
        let mut pending = vec![(self.root.join(dir_key), dir_key.to_owned())];
        let mut found = Vec::new();
        while let Some((dir, dir_key)) = pending.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(error) if is_missing(&error) => continue,
                Err(error) => return Err(self.io_error("list", &dir, error)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| self.io_error("list", &dir, e))?;
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                // Dot names are the store's own (temporary files) and never valid keys.
                if name.starts_with('.') {
                    continue;
                }
                let key = if dir_key.is_empty() {
                    name
                } else {
                    format!("{dir_key}/{name}")
                };
                let Ok(file_type) = entry.file_type() else {
                    continue;
                };
                if file_type.is_dir() {
                    let as_prefix = format!("{key}/");
                    if as_prefix.starts_with(prefix) || prefix.starts_with(&as_prefix) {
                        pending.push((entry.path(), key));
                    }
                } else if file_type.is_file() && key.starts_with(prefix) {
                    match entry.metadata() {
                        Ok(meta) => found.push(ListedObject {
                            key,
                            size: meta.len(),
                            last_modified_ms: modified_ms(&meta),
                        }),
                        // Deleted while we were listing.
                        Err(error) if is_missing(&error) => {}
                        Err(error) => return Err(self.io_error("stat", &entry.path(), error)),
                    }
                }
            }
        }
        found.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(found)
    }

    fn delete_blocking(&self, key: &str) -> Result<(), BlobError> {
        let path = self.object_path(key);
        match fs::remove_file(&path) {
            Ok(()) => {
                self.prune_empty_parents(&path);
                Ok(())
            }
            // No object under this key: a missing file, or a directory of other keys.
            Err(error) if is_missing(&error) || error.kind() == io::ErrorKind::IsADirectory => {
                Ok(())
            }
            Err(error) => Err(self.io_error("delete", &path, error)),
        }
    }

    /// Removes directories left empty by a delete, up to (not including) the root, so deleting
    /// a stream's objects leaves no directory behind. Stops at the first non-empty directory.
    fn prune_empty_parents(&self, path: &Path) {
        let mut dir = path.parent();
        while let Some(current) = dir {
            if current == &*self.root || !current.starts_with(&self.root) {
                break;
            }
            if fs::remove_dir(current).is_err() {
                break;
            }
            dir = current.parent();
        }
    }

    fn check_blocking(&self) -> Result<(), BlobError> {
        let meta =
            fs::metadata(&self.root).map_err(|e| self.unavailable("open", &self.root, &e))?;
        if !meta.is_dir() {
            return Err(BlobError::unavailable(format!(
                "local blob directory {} is not a directory",
                self.root.display()
            )));
        }
        // Prove that we can write, not just read: create and remove a probe file.
        let tmp_dir = self.root.join(TMP_DIR);
        fs::create_dir_all(&tmp_dir).map_err(|e| self.unavailable("create", &tmp_dir, &e))?;
        let probe = self.new_temp_path();
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
            .map_err(|e| self.unavailable("write", &probe, &e))?;
        fs::remove_file(&probe).map_err(|e| self.unavailable("delete", &probe, &e))
    }
}

fn is_missing(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

fn modified_ms(meta: &fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .unwrap_or(0)
}

/// Runs filesystem work on the blocking pool.
async fn blocking<T, F>(work: F) -> Result<T, BlobError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, BlobError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| BlobError::other(format!("local blob store task failed: {e}")))?
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        validate_key(key)?;
        let (this, key) = (self.clone(), key.to_owned());
        blocking(move || this.put_blocking(&key, &body)).await
    }

    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool, BlobError> {
        validate_key(key)?;
        let (this, key) = (self.clone(), key.to_owned());
        blocking(move || this.put_if_absent_blocking(&key, &body)).await
    }

    async fn get(&self, key: &str) -> Result<Bytes, BlobError> {
        validate_key(key)?;
        let (this, key) = (self.clone(), key.to_owned());
        blocking(move || this.get_blocking(&key)).await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, BlobError> {
        validate_key(key)?;
        check_range_shape(key, &range)?;
        let (this, key) = (self.clone(), key.to_owned());
        blocking(move || this.get_range_blocking(&key, range)).await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, BlobError> {
        validate_key(key)?;
        let (this, key) = (self.clone(), key.to_owned());
        blocking(move || this.head_blocking(&key)).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, BlobError> {
        validate_prefix(prefix)?;
        let (this, prefix) = (self.clone(), prefix.to_owned());
        blocking(move || this.list_blocking(&prefix)).await
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        validate_key(key)?;
        let (this, key) = (self.clone(), key.to_owned());
        blocking(move || this.delete_blocking(&key)).await
    }

    async fn check(&self) -> Result<(), BlobError> {
        let this = self.clone();
        blocking(move || this.check_blocking()).await
    }
}

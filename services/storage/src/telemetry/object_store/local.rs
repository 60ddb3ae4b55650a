//! A local directory as an object store, for the embedded default: the same key layout as S3,
//! so that DuckDB or pyarrow read it the same way. A `put` writes a temporary file, syncs it,
//! renames it into place and syncs the directory, so an object is either whole or absent, and
//! durable once `put` returns.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
};

use async_trait::async_trait;
use bytes::Bytes;

use crate::telemetry::object_store::{
    LifecycleRule, ObjectError, ObjectKey, ObjectMeta, ObjectStore, with_rule,
};

/// Temporary files live here, inside the root, so that renames stay on one file system.
const TMP_DIR: &str = ".tmp";
/// The lifecycle rules, for the tiering job to apply (a directory has no lifecycle of its own).
const LIFECYCLE_FILE: &str = ".lifecycle.json";

/// Objects as files under a root directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
    lifecycle: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl LocalStore {
    /// Opens (and creates) a store at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, ObjectError> {
        let root = root.into();
        std::fs::create_dir_all(root.join(TMP_DIR)).map_err(|e| io_error(&root, &e))?;
        Ok(Self {
            root,
            lifecycle: Default::default(),
        })
    }

    async fn read_rules(&self) -> Result<Vec<LifecycleRule>, ObjectError> {
        let path = self.root.join(LIFECYCLE_FILE);
        blocking(move || match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| ObjectError::Permanent(format!("{}: {e}", path.display()))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(error) => Err(io_error(&path, &error)),
        })
        .await
    }

    async fn write_rules(&self, rules: Vec<LifecycleRule>) -> Result<(), ObjectError> {
        let (root, target) = (self.root.clone(), self.root.join(LIFECYCLE_FILE));
        let bytes =
            serde_json::to_vec_pretty(&rules).map_err(|e| ObjectError::Permanent(e.to_string()))?;
        blocking(move || put_file(&root, &target, &bytes)).await
    }

    fn path(&self, key: &ObjectKey) -> PathBuf {
        self.root.join(key.as_str())
    }
}

fn io_error(path: &Path, error: &std::io::Error) -> ObjectError {
    match error.kind() {
        std::io::ErrorKind::NotFound => ObjectError::NotFound(path.display().to_string()),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::InvalidInput => {
            ObjectError::Permanent(format!("{}: {error}", path.display()))
        }
        _ => ObjectError::Retryable(format!("{}: {error}", path.display())),
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ObjectError> + Send + 'static,
) -> Result<T, ObjectError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ObjectError::Retryable(format!("file task failed: {e}")))?
}

fn put_file(root: &Path, target: &Path, body: &[u8]) -> Result<(), ObjectError> {
    let dir = target.parent().unwrap_or(root);
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, &e))?;
    let temporary = root
        .join(TMP_DIR)
        .join(uuid::Uuid::new_v4().simple().to_string());
    let mut file = std::fs::File::create(&temporary).map_err(|e| io_error(&temporary, &e))?;
    file.write_all(body)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_error(&temporary, &e))?;
    std::fs::rename(&temporary, target).map_err(|e| io_error(target, &e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, &e))
}

fn walk(
    root: &Path,
    dir: &Path,
    prefix: &str,
    out: &mut Vec<ObjectMeta>,
) -> Result<(), ObjectError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(io_error(dir, &error)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| io_error(dir, &e))?;
        let path = entry.path();
        let relative = path.strip_prefix(root).unwrap_or(&path);
        let key = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if key == TMP_DIR || key == LIFECYCLE_FILE {
            continue;
        }
        let kind = entry.file_type().map_err(|e| io_error(&path, &e))?;
        if kind.is_dir() {
            // Descend only where the prefix can still match.
            let as_dir = format!("{key}/");
            if as_dir.starts_with(prefix) || prefix.starts_with(&as_dir) {
                walk(root, &path, prefix, out)?;
            }
        } else if key.starts_with(prefix)
            && let Ok(key) = ObjectKey::new(key)
        {
            let size = entry.metadata().map_err(|e| io_error(&path, &e))?.len();
            out.push(ObjectMeta { key, size });
        }
    }
    Ok(())
}

#[async_trait]
impl ObjectStore for LocalStore {
    async fn put(&self, key: &ObjectKey, body: Bytes) -> Result<(), ObjectError> {
        let (root, target) = (self.root.clone(), self.path(key));
        blocking(move || put_file(&root, &target, &body)).await
    }

    async fn get(&self, key: &ObjectKey) -> Result<Bytes, ObjectError> {
        let path = self.path(key);
        blocking(move || {
            std::fs::read(&path)
                .map(Bytes::from)
                .map_err(|e| io_error(&path, &e))
        })
        .await
        .map_err(|e| match e {
            ObjectError::NotFound(_) => ObjectError::NotFound(key.to_string()),
            other => other,
        })
    }

    async fn get_range(
        &self,
        key: &ObjectKey,
        range: std::ops::Range<u64>,
    ) -> Result<Bytes, ObjectError> {
        use std::io::{Read as _, Seek as _};
        let path = self.path(key);
        let length = usize::try_from(range.end.saturating_sub(range.start))
            .map_err(|e| ObjectError::Permanent(format!("{key}: range {range:?}: {e}")))?;
        blocking(move || {
            let mut file = std::fs::File::open(&path).map_err(|e| io_error(&path, &e))?;
            file.seek(std::io::SeekFrom::Start(range.start))
                .map_err(|e| io_error(&path, &e))?;
            let mut bytes = vec![0; length];
            file.read_exact(&mut bytes)
                .map_err(|e| io_error(&path, &e))?;
            Ok(Bytes::from(bytes))
        })
        .await
        .map_err(|e| match e {
            ObjectError::NotFound(_) => ObjectError::NotFound(key.to_string()),
            other => other,
        })
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, ObjectError> {
        let path = self.path(key);
        let size = blocking(move || {
            std::fs::metadata(&path)
                .map(|m| m.len())
                .map_err(|e| io_error(&path, &e))
        })
        .await
        .map_err(|e| match e {
            ObjectError::NotFound(_) => ObjectError::NotFound(key.to_string()),
            other => other,
        })?;
        Ok(ObjectMeta {
            key: key.clone(),
            size,
        })
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, ObjectError> {
        let (root, prefix) = (self.root.clone(), prefix.to_owned());
        let mut objects = blocking(move || {
            let mut out = Vec::new();
            walk(&root, &root, &prefix, &mut out)?;
            Ok(out)
        })
        .await?;
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), ObjectError> {
        let path = self.path(key);
        blocking(move || match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(io_error(&path, &error)),
        })
        .await
    }

    async fn lifecycle_rules(&self) -> Result<Vec<LifecycleRule>, ObjectError> {
        self.read_rules().await
    }

    async fn put_lifecycle_rule(&self, rule: &LifecycleRule) -> Result<(), ObjectError> {
        rule.validate()?;
        let _writer = self.lifecycle.lock().await;
        let rules = with_rule(self.read_rules().await?, &rule.id, Some(rule));
        self.write_rules(rules).await
    }

    async fn delete_lifecycle_rule(&self, id: &str) -> Result<(), ObjectError> {
        let _writer = self.lifecycle.lock().await;
        let rules = with_rule(self.read_rules().await?, id, None);
        self.write_rules(rules).await
    }
}

//! Secrets the embedded default generates on first start and keeps in its data directory,
//! readable by their owner only (mode 0600), so that a restart finds the same ones.

use std::{io::Write as _, path::Path};

/// Reads the secret at `path`, or creates the file with `generate()`'s bytes.
pub fn load_or_create(
    path: &Path,
    generate: impl FnOnce() -> Result<Vec<u8>, String>,
) -> Result<Vec<u8>, String> {
    match std::fs::read(path) {
        Ok(secret) => return Ok(secret),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
    }
    let secret = generate()?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(&secret)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    tracing::info!(path = %path.display(), "generated a secret");
    Ok(secret)
}

/// Creates a directory and its missing parents, readable by their owner only (mode 0700), as a
/// data directory holding secrets and databases must be; an existing directory keeps its mode.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates an empty file readable by its owner only (mode 0600) if none exists at `path`: a
/// database file made before SQLite opens it keeps that mode, and SQLite gives its journal
/// files the mode of the database file.
pub fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

/// Generates an operator token: `mfgop_` and 256 random bits in base64url.
pub fn operator_token() -> Result<String, String> {
    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
    Ok(format!(
        "mfgop_{}",
        URL_SAFE_NO_PAD.encode(random_bytes(32)?)
    ))
}

/// Returns `len` bytes from the operating system's CSPRNG.
pub fn random_bytes(len: usize) -> Result<Vec<u8>, String> {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness available: {e}"))?;
    Ok(bytes)
}

/// Returns a service's operator token: the configured one (at least 16 characters), or, on the
/// embedded SQLite default, the one kept in `admin-token` beside the database file, generated on
/// first start. PostgreSQL deployments must configure it.
pub fn service_operator_token(
    configured: Option<&crate::config::Secret>,
    database_url: &str,
) -> Result<String, String> {
    if let Some(token) = configured {
        if token.expose().len() < 16 {
            return Err("the admin token must be at least 16 characters".to_owned());
        }
        return Ok(token.expose().to_owned());
    }
    match crate::db::validate_url(database_url)? {
        crate::db::Backend::Sqlite => {
            use std::str::FromStr as _;
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(database_url)
                .map_err(|e| e.to_string())?;
            let path = options.get_filename().with_file_name("admin-token");
            let bytes = load_or_create(&path, || Ok(operator_token()?.into_bytes()))?;
            let token =
                String::from_utf8(bytes).map_err(|_| format!("{} is not text", path.display()))?;
            Ok(token.trim().to_owned())
        }
        crate::db::Backend::Postgres => {
            Err("--admin-token (MFG_ADMIN_TOKEN) is required with PostgreSQL".to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_created_once_with_owner_only_access() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/secret");
        let first = load_or_create(&path, || random_bytes(32)).unwrap();
        let second = load_or_create(&path, || Ok(b"other".to_vec())).unwrap();
        assert_eq!(first, second);
        assert_eq!(first.len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }
}

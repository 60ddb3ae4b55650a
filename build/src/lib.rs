//! What the build scripts of the platform's crates share.
//!
//! [`embed_migrations`] lists a service's SQL migrations for `include!`, so that the service
//! builds its `sqlx` migrator with [`Migrator::with_migrations`] instead of `sqlx::migrate!`.
//! The macro would bring `sqlx-macros`, which compiles `sqlx` and the SQLite C library a second
//! time, for the build machine (decision 0016).
//!
//! [`Migrator::with_migrations`]: https://docs.rs/sqlx/latest/sqlx/migrate/struct.Migrator.html

#![expect(
    clippy::print_stdout,
    reason = "build scripts speak to cargo on standard output"
)]

use std::{
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
};

/// Writes `$OUT_DIR/migrations.rs`, for a service to `include!` in a module: a constant for each
/// directory of `migrations/` (one per backend, e.g. `POSTGRES` for `migrations/postgres`), of
/// type `mfg_common::db::MigrationFiles`: each `.sql` file's name and `include_str!` of its
/// text, sorted by name. Cargo reruns the build script when a file in these directories is
/// added, removed or changed.
///
/// # Panics
///
/// If `migrations/` or `OUT_DIR` cannot be read or written, or a file is not named
/// `<version>_<description>.sql`: a build script can only fail.
pub fn embed_migrations() {
    let root = PathBuf::from(env("CARGO_MANIFEST_DIR")).join("migrations");
    println!("cargo::rerun-if-changed={}", root.display());
    let mut module = String::new();
    let mut backends: Vec<PathBuf> = entries(&root).into_iter().filter(|p| p.is_dir()).collect();
    backends.sort();
    for backend in backends {
        println!("cargo::rerun-if-changed={}", backend.display());
        let name = backend
            .file_name()
            .and_then(|name| name.to_str())
            .expect("a backend's directory is named in UTF-8");
        writeln!(
            module,
            "/// The migrations in `migrations/{name}`.\npub const {}: mfg_common::db::MigrationFiles = {};",
            name.to_uppercase(),
            listing(&backend)
        )
        .expect("writing to a String cannot fail");
    }
    let target = PathBuf::from(env("OUT_DIR")).join("migrations.rs");
    fs::write(&target, module).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
}

/// The `&[(name, include_str!(path))]` expression of the `.sql` files in `dir`.
fn listing(dir: &Path) -> String {
    let mut files: Vec<PathBuf> = entries(dir)
        .into_iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .collect();
    files.sort();
    let mut list = String::from("&[\n");
    for path in files {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .expect("a migration is named in UTF-8");
        let versioned = name.split_once('_').is_some_and(|(version, _)| {
            !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit())
        });
        assert!(
            versioned,
            "{}: a migration is named <version>_<description>.sql",
            path.display()
        );
        writeln!(list, "    ({name:?}, include_str!({:?})),", path.display())
            .expect("writing to a String cannot fail");
    }
    list.push(']');
    list
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name} for build scripts"))
}

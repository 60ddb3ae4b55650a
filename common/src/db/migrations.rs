//! A service's migrator, from the SQL files its build script embeds with
//! `mfg_build::embed_migrations`: what `sqlx::migrate!` makes, without the macro (decision 0016).

use std::borrow::Cow;

use sqlx::{
    SqlSafeStr as _,
    migrate::{Migration, MigrationType, Migrator},
};

/// The migrations of one backend: each file's name (`<version>_<description>.sql`) and text,
/// as the constants of `$OUT_DIR/migrations.rs` (`POSTGRES`, `SQLITE`) list them.
pub type MigrationFiles = &'static [(&'static str, &'static str)];

/// A migrator of `files`, recorded in `table` (sqlx's `_sqlx_migrations` when `None`). Versions,
/// descriptions and checksums are those `sqlx::migrate!` gives the same files, so a database
/// migrated by either is up to date for the other.
///
/// # Panics
///
/// If a file's name does not start with a numeric version and `_`; `mfg_build` checks this when
/// the service is built.
pub fn migrator(files: MigrationFiles, table: Option<&'static str>) -> Migrator {
    let mut migrator = Migrator::with_migrations(files.iter().map(migration).collect());
    if let Some(table) = table {
        migrator.dangerous_set_table_name(table);
    }
    migrator
}

fn migration(&(name, sql): &(&'static str, &'static str)) -> Migration {
    let (version, rest) = name
        .split_once('_')
        .expect("mfg_build checked the migration's name");
    let version = version
        .parse()
        .expect("mfg_build checked the migration's version");
    let kind = MigrationType::from_filename(rest);
    let description = rest.trim_end_matches(kind.suffix()).replace('_', " ");
    let no_tx = sql.starts_with("-- no-transaction");
    Migration::new(
        version,
        Cow::Owned(description),
        kind,
        sql.into_sql_str(),
        no_tx,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_become_migrations_as_sqlx_names_them() {
        let files: MigrationFiles = &[
            ("20261205000002_budgets.sql", "CREATE TABLE b (x int);"),
            (
                "20261124000001_hot_tier.sql",
                "-- no-transaction\nCREATE INDEX;",
            ),
        ];
        let migrator = migrator(files, Some("_sqlx_migrations_test"));
        let found: Vec<_> = migrator
            .iter()
            .map(|m| (m.version, m.description.as_ref(), m.no_tx))
            .collect();
        assert_eq!(
            found,
            [
                (20261124000001, "hot tier", true),
                (20261205000002, "budgets", false)
            ]
        );
        // `migrate!`'s checksum: SHA-384 of the file's text.
        use sha2::Digest as _;
        let budgets = migrator.iter().nth(1).unwrap();
        assert_eq!(
            budgets.checksum.as_ref(),
            sha2::Sha384::digest("CREATE TABLE b (x int);").as_slice()
        );
    }
}

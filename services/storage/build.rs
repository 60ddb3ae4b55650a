//! Embeds the SQL migrations (`migrations/<backend>/*.sql`) for `mfg_common::db::migrator`.

fn main() {
    mfg_build::embed_migrations();
}

//! A database that cannot be used says why: the server that refused, and its reason, rather
//! than the pool's "timed out".

use mfg_common::{config::DatabaseArgs, db};

async fn error_of(url: &str) -> String {
    let mut args = DatabaseArgs::new(url);
    args.pool.acquire_timeout = std::time::Duration::from_secs(2);
    db::connect(&args)
        .await
        .map(|_| ())
        .expect_err("cannot connect")
        .to_string()
}

#[tokio::test]
async fn an_unusable_postgres_is_named_with_its_cause() {
    // Nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let refused = error_of(&format!("postgres://postgres@127.0.0.1:{port}/mfg")).await;
    assert!(
        refused.contains(&format!("cannot reach PostgreSQL at 127.0.0.1:{port}"))
            && refused.to_lowercase().contains("refused"),
        "{refused}"
    );
    assert!(!refused.contains("timed out"), "{refused}");

    // A database that does not exist on a server that answers.
    // The server the suite runs against (scripts/test.sh sets it).
    let admin = std::env::var("MFG_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let (base, _) = admin.rsplit_once('/').unwrap();
    let missing = error_of(&format!("{base}/no_such_database_here")).await;
    assert!(
        missing.contains("no_such_database_here") && missing.contains("does not exist"),
        "{missing}"
    );
}

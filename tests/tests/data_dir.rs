//! The embedded default's data directory: private to its owner (0700, files 0600) whatever
//! the umask, and used by one `mfg up` at a time.

use std::os::unix::fs::PermissionsExt as _;

use mfg::platform::PlatformBuilder;
use mfg_common::shutdown::CancellationToken;
use mfg_tests::{Platform, up_args};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn the_data_directory_is_private_and_locked() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let platform = Platform::up(&dir, None).await;

    assert_eq!(mode(&dir), 0o700, "the data directory");
    for file in ["tenant.db", "storage.db", "admin-token", "mfg.lock"] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            assert_eq!(mode(&path) & 0o077, 0, "{} is private", path.display());
        }
    }

    // A second `mfg up` on the same directory is refused, naming the holder.
    let args = up_args(&dir, None, false);
    let refused = PlatformBuilder::new(args)
        .start(CancellationToken::new())
        .await
        .expect_err("the directory is in use");
    let message = format!("{refused:#}");
    assert!(
        message.contains(&format!("pid {}", std::process::id())),
        "{message}"
    );

    // Once the first has stopped, the directory is free again.
    platform.stop().await;
    Platform::up(&dir, None).await.stop().await;
}

#[tokio::test]
async fn postgres_without_a_pepper_is_refused_before_anything_is_written() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let mut args = up_args(&dir, Some("postgres://postgres@127.0.0.1:5432/mfg"), false);
    args.pepper.key_pepper = None;
    let refused = PlatformBuilder::new(args)
        .start(CancellationToken::new())
        .await
        .expect_err("no pepper");
    let message = format!("{refused:#}");
    assert!(message.contains("--key-pepper"), "{message}");
    assert!(!dir.exists(), "nothing is written: {}", dir.display());
}

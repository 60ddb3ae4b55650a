//! What a newcomer sees from `mfg up`, run as the real binary: "up" only once the databases
//! answer (and the cause when they cannot), and the demo's alert lines.

use std::{
    io::Read as _,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// Runs `mfg up` with `args` in `dir` for `within`, then kills it; returns what it printed on
/// stdout and stderr.
fn run_up(dir: &std::path::Path, args: &[&str], within: Duration) -> (String, String) {
    let any = "127.0.0.1:0";
    let mut child = Command::new(env!("CARGO_BIN_EXE_mfg"))
        .arg("up")
        .args([
            "--gateway-addr",
            any,
            "--tenant-addr",
            any,
            "--storage-addr",
            any,
        ])
        .args(["--cost-addr", any, "--provisioning-addr", any])
        .args(args)
        .current_dir(dir)
        .env_remove("MFG_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mfg runs");
    let deadline = Instant::now() + within;
    while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (stdout, stderr)
}

#[test]
fn an_unreachable_database_is_named_and_up_is_not_said() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("postgres://postgres@127.0.0.1:{port}/mfg");
    let (stdout, stderr) = run_up(
        dir.path(),
        &[
            "--database-url",
            &url,
            "--key-pepper",
            "first-run-pepper-0123456789",
            "--admin-token",
            "first-run-token-0123456789",
        ],
        Duration::from_secs(3),
    );
    assert!(stdout.contains("mfg is starting"), "{stdout}\n{stderr}");
    assert!(!stdout.contains("mfg is up"), "{stdout}");
    // Logs go to standard output too, after the lines `mfg up` prints itself.
    assert!(
        format!("{stdout}{stderr}")
            .contains(&format!("cannot reach PostgreSQL at 127.0.0.1:{port}")),
        "{stdout}\n{stderr}"
    );
}

#[test]
fn the_demo_says_when_its_first_alert_opens() {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, stderr) = run_up(dir.path(), &["--demo"], Duration::from_secs(10));
    assert!(stdout.contains("mfg is up"), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("demo: alert opened   acme-presses  press-01 temperature_c"),
        "{stdout}\n{stderr}"
    );
    assert!(
        !format!("{stdout}{stderr}").contains("INFO"),
        "request logs are quiet: {stdout}\n{stderr}"
    );
}

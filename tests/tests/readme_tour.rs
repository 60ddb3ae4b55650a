//! The README's tour runs as written: its block, between `<!-- tour:begin -->` and
//! `<!-- tour:end -->`, runs in bash against a real `mfg up`, and every step it expects to
//! pass passes.

use mfg_tests::Platform;

/// The shell block of the README's tour.
fn tour() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("the README");
    let begin = readme
        .find("<!-- tour:begin -->")
        .expect("the tour's start");
    let end = readme.find("<!-- tour:end -->").expect("the tour's end");
    let block = &readme[begin..end];
    let start = block.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let stop = block[start..].find("```").expect("the block's end") + start;
    block[start..stop].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_tour_runs_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::up(dir.path(), None).await;
    let script = format!("set -eu\n{}", tour());
    let (base, token, cwd) = (
        platform.base.clone(),
        platform.operator_token.clone(),
        dir.path().to_owned(),
    );
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new("timeout")
            .args(["60", "bash", "-c", &script])
            .env("MFG", base)
            .env("TOKEN", token)
            .current_dir(cwd)
            .output()
    });
    let output = run.await.unwrap().expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the tour failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    for expected in [
        r#""machineId":"press-7""#,
        r#""accepted":9"#,
        r#""state":"ALERT_STATE_ACKNOWLEDGED""#,
        "event: opened",
        r#""code":3"#,
        r#""code":7"#,
        r#""openapi":"3.0.3""#,
        r#""ready":true"#,
        "# HELP",
    ] {
        assert!(
            stdout.contains(expected),
            "the tour printed no {expected}:\n{stdout}"
        );
    }
    platform.stop().await;
}

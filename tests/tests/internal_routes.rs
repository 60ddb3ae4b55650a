//! Over REST, an internal RPC has no route, though the contract annotates it: only the
//! services call it, with the operator's credential.

#[tokio::test]
async fn internal_rpcs_have_no_route() {
    let dir = tempfile::tempdir().unwrap();
    let platform = mfg_tests::Platform::up(dir.path(), None).await;
    let http = reqwest::Client::new();
    for path in [
        "/v1/usage:record",
        "/v1/tenants/t1/storage:prepare",
        "/v1/tenants/t1/storage:release",
    ] {
        let (status, _) = mfg_tests::http_call(
            &http,
            &platform.base,
            reqwest::Method::POST,
            path,
            Some(&platform.operator_token),
            Some(serde_json::json!({})),
        )
        .await;
        assert_eq!(status, reqwest::StatusCode::NOT_FOUND, "{path}");
    }
    platform.stop().await;
}

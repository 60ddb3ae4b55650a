//! `mfg bench gateway` measures calls that succeed: against a real `mfg up`, its REST and
//! direct gRPC calls all pass (it fails, naming the phase, when any call of a phase fails).

use mfg_tests::Platform;

#[tokio::test]
async fn the_gateway_bench_runs_on_calls_that_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::up(dir.path(), None).await;
    let args = mfg_bench::bench::GatewayBench {
        addrs: mfg_common::config::PlatformAddrs {
            gateway: platform.addresses.gateway.to_string(),
            tenant: platform.addresses.tenant.to_string(),
            ..Default::default()
        },
        data_dir: mfg_common::config::DataDir::new(dir.path()),
        concurrency: 2,
        duration: std::time::Duration::from_millis(200),
    };
    mfg_bench::bench::gateway(args.clone())
        .await
        .expect("every call succeeds");

    // Without a tenant service to compare with, it fails rather than print figures.
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let missing = mfg_bench::bench::GatewayBench {
        addrs: mfg_common::config::PlatformAddrs {
            tenant: nowhere.local_addr().unwrap().to_string(),
            ..args.addrs.clone()
        },
        ..args
    };
    drop(nowhere);
    assert!(mfg_bench::bench::gateway(missing).await.is_err());
    platform.stop().await;
}

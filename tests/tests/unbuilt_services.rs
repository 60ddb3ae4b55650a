//! The storage, cost and provisioning services are designed in the contract but not built yet:
//! they start, report SERVING, list their services over reflection, and answer every RPC with
//! UNIMPLEMENTED, never with a made-up result.

use mfg_proto::{
    cost::v1::{GetPriceBookRequest, cost_service_client::CostServiceClient},
    provisioning::v1::{
        StartProvisioningRequest, provisioning_service_client::ProvisioningServiceClient,
    },
    service_names,
    storage::v1::{
        IngestBatchRequest, ListAlertsRequest, alert_service_client::AlertServiceClient,
        telemetry_service_client::TelemetryServiceClient,
    },
};
use mfg_tests::Running;
use tonic::Code;

#[tokio::test]
async fn unbuilt_rpcs_answer_unimplemented() {
    let storage = Running::start(service_names::TELEMETRY, |l, s| {
        mfg_storage::run(Default::default(), l, s)
    })
    .await;
    let cost = Running::start(service_names::COST, |l, s| {
        mfg_cost::run(Default::default(), l, s)
    })
    .await;
    let provisioning = Running::start(service_names::PROVISIONING, |l, s| {
        mfg_provisioning::run(Default::default(), l, s)
    })
    .await;

    let ingest = TelemetryServiceClient::new(storage.channel())
        .ingest_batch(IngestBatchRequest::default())
        .await
        .unwrap_err();
    assert_eq!(ingest.code(), Code::Unimplemented);
    let alerts = AlertServiceClient::new(storage.channel())
        .list_alerts(ListAlertsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(alerts.code(), Code::Unimplemented);
    let prices = CostServiceClient::new(cost.channel())
        .get_price_book(GetPriceBookRequest {})
        .await
        .unwrap_err();
    assert_eq!(prices.code(), Code::Unimplemented);
    let run = ProvisioningServiceClient::new(provisioning.channel())
        .start_provisioning(StartProvisioningRequest::default())
        .await
        .unwrap_err();
    assert_eq!(run.code(), Code::Unimplemented);

    storage.stop().await;
    cost.stop().await;
    provisioning.stop().await;
}

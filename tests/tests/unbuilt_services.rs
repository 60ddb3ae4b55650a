//! The parts of the contract that are not built yet (alerts, cost, provisioning) start,
//! report SERVING, and answer UNIMPLEMENTED, never a made-up result.

use mfg_proto::{
    cost::v1::{GetPriceBookRequest, cost_service_client::CostServiceClient},
    provisioning::v1::{
        StartProvisioningRequest, provisioning_service_client::ProvisioningServiceClient,
    },
    service_names,
    storage::v1::{ListAlertsRequest, alert_service_client::AlertServiceClient},
};
use mfg_tests::Running;
use tonic::Code;

#[tokio::test]
async fn unbuilt_rpcs_answer_unimplemented() {
    let database = mfg_common::testing::TestDatabase::sqlite();
    let tenant_database = mfg_common::testing::TestDatabase::sqlite();
    let tenant = mfg_tests::start_tenant(&tenant_database.url).await;
    let storage = mfg_tests::start_storage(&database.url, tenant.addr).await;
    let cost = Running::start(service_names::COST, |l, s| {
        mfg_cost::run(Default::default(), l, s)
    })
    .await;
    let provisioning = Running::start(service_names::PROVISIONING, |l, s| {
        mfg_provisioning::run(Default::default(), l, s)
    })
    .await;

    let alerts = AlertServiceClient::new(mfg_tests::operator_channel(&storage))
        .list_alerts(ListAlertsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(alerts.code(), Code::Unimplemented);
    let prices = CostServiceClient::new(mfg_tests::operator_channel(&cost))
        .get_price_book(GetPriceBookRequest {})
        .await
        .unwrap_err();
    assert_eq!(prices.code(), Code::Unimplemented);
    let run = ProvisioningServiceClient::new(mfg_tests::operator_channel(&provisioning))
        .start_provisioning(StartProvisioningRequest::default())
        .await
        .unwrap_err();
    assert_eq!(run.code(), Code::Unimplemented);

    storage.stop().await;
    tenant.stop().await;
    cost.stop().await;
    provisioning.stop().await;
}

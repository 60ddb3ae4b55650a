//! The parts of the contract that are not built yet (cost, provisioning) start,
//! report SERVING, and answer UNIMPLEMENTED, never a made-up result.

use mfg_proto::{
    cost::v1::{GetPriceBookRequest, cost_service_client::CostServiceClient},
    provisioning::v1::{
        StartProvisioningRequest, provisioning_service_client::ProvisioningServiceClient,
    },
    service_names,
};
use mfg_tests::Running;
use tonic::Code;

#[tokio::test]
async fn unbuilt_rpcs_answer_unimplemented() {
    let cost = Running::start(service_names::COST, |l, s| {
        mfg_cost::run(Default::default(), l, s)
    })
    .await;
    let provisioning = Running::start(service_names::PROVISIONING, |l, s| {
        mfg_provisioning::run(Default::default(), l, s)
    })
    .await;

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

    cost.stop().await;
    provisioning.stop().await;
}

//! W3C trace context crosses a gRPC call: the client layer injects `traceparent`, the server
//! layer continues the trace, so the server's span is a child of the caller's. One test in its
//! own binary, because the tracer provider and propagator are process-wide.

use mfg_common::testing::TestDatabase;
use mfg_proto::tenant::v1::{ListTenantsRequest, tenant_service_client::TenantServiceClient};
use opentelemetry::trace::SpanId;
use tracing::Instrument as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_one_trace_across_client_and_server() {
    let (exporter, provider) = mfg_tests::install_in_memory_tracer();

    let db = TestDatabase::sqlite();
    let service = mfg_tests::start_tenant(&db.url).await;
    let mut client = TenantServiceClient::new(mfg_tests::operator_channel(&service));
    client
        .list_tenants(ListTenantsRequest::default())
        .instrument(tracing::info_span!("dashboard.refresh"))
        .await
        .unwrap();
    service.stop().await;
    provider.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let client_span = spans
        .iter()
        .find(|s| s.name == "dashboard.refresh")
        .expect("client span");
    let server_span = spans
        .iter()
        .find(|s| s.name == "mfg.tenant.v1.TenantService/ListTenants")
        .unwrap_or_else(|| {
            panic!(
                "server span among {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        });
    assert_eq!(
        server_span.span_context.trace_id(),
        client_span.span_context.trace_id()
    );
    assert_eq!(
        server_span.parent_span_id,
        client_span.span_context.span_id()
    );
    assert_ne!(server_span.parent_span_id, SpanId::INVALID);
}

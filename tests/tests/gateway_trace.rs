//! One REST call is one trace: the gateway continues the caller's `traceparent`, and the tenant
//! service's span is a child of the gateway's. One test in its own binary, because the tracer
//! provider and propagator are process-wide.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_call_is_one_trace_from_the_caller_to_the_tenant_service() {
    let (exporter, provider) = mfg_tests::install_in_memory_tracer();

    let dir = tempfile::tempdir().unwrap();
    let platform = mfg_tests::Platform::up(dir.path(), None).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let response = reqwest::Client::new()
        .get(format!("{}/v1/tenants", platform.base))
        .bearer_auth(&platform.operator_token)
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    platform.stop().await;
    provider.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let names = || spans.iter().map(|s| s.name.to_string()).collect::<Vec<_>>();
    let gateway = spans
        .iter()
        .find(|s| s.name == "GET /v1/tenants")
        .unwrap_or_else(|| panic!("gateway span among {:?}", names()));
    // The cost service lists the tenants too, in traces of its own.
    let service = spans
        .iter()
        .find(|s| {
            s.name == "mfg.tenant.v1.TenantService/ListTenants"
                && s.span_context.trace_id().to_string() == trace_id
        })
        .unwrap_or_else(|| panic!("tenant service span of the trace among {:?}", names()));
    assert_eq!(gateway.span_context.trace_id().to_string(), trace_id);
    assert_eq!(gateway.parent_span_id.to_string(), caller_span);
    assert_eq!(service.parent_span_id, gateway.span_context.span_id());
}

//! A call on a service channel to a service that takes it and never answers ends at its
//! deadline, as CANCELLED ("Timeout expired", how tonic reports a deadline it enforces on the
//! client), which callers retry; the service is told the deadline (`grpc-timeout`).

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use mfg_proto::tenant::v1::{GetTenantRequest, tenant_service_client::TenantServiceClient};
use tokio::sync::mpsc;
use tonic::{Code, Request, body::Body, server::NamedService, transport::Server};

/// A tenant service that takes every call, reports its `grpc-timeout`, and never answers.
#[derive(Clone)]
struct Hangs(mpsc::UnboundedSender<Option<String>>);

impl NamedService for Hangs {
    const NAME: &'static str = "mfg.tenant.v1.TenantService";
}

impl tower::Service<http::Request<Body>> for Hangs {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let timeout = request
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let _ = self.0.send(timeout);
        Box::pin(std::future::pending())
    }
}

#[tokio::test]
async fn a_call_to_a_service_that_never_answers_ends_at_its_deadline() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (calls, mut taken) = mpsc::unbounded_channel();
    tokio::spawn(
        Server::builder()
            .add_service(Hangs(calls))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let channel = mfg_common::grpc::service_channel(&format!("http://{addr}")).unwrap();
    let mut request = Request::new(GetTenantRequest::default());
    request.set_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let status = TenantServiceClient::new(channel)
        .get_tenant(request)
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert_eq!(status.code(), Code::Cancelled, "{status:?}");
    assert!(status.message().contains("Timeout expired"), "{status:?}");
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert_eq!(taken.recv().await.unwrap().as_deref(), Some("300000u"));
}

//! The start-up skeleton every service shares. A service serves at once, its health NOT_SERVING
//! and its RPCs UNAVAILABLE, while its database is reached and migrated in the background,
//! retrying with backoff; then it is SERVING for as long as the database answers. Cost and
//! provisioning take the same steps as tenant and storage.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, OnceLock},
};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use anyhow::Context as _;
use mfg_proto::tenant::v1::tenant_service_client::TenantServiceClient;

use crate::{
    auth::{AuthLayer, Authenticator, KeyCache, MAX_TTL},
    clock::SharedClock,
    config::{DatabaseArgs, ServerArgs},
    db::{self, DbPool},
    grpc::{self, Health, TracedChannel},
};

/// A service running until its shutdown, as its `run` returns it: boxed, so that the service's
/// whole async tree is compiled once, in its own crate. The state machine of an `async fn` is a
/// closure, which rustc never shares across crates: returned unboxed, it is compiled again in
/// every crate that awaits it (`mfg`'s library and binary, the tests and the benchmarks).
pub type Running = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// How a service other than the tenant service authenticates its callers: a client of the
/// tenant service at `tenant_addr` carrying the operator token, and the auth layer that checks
/// the operator token and resolves API keys with that client (cached for at most [`MAX_TTL`]).
pub fn tenant_auth(
    tenant_addr: &str,
    operator_token: &str,
    clock: SharedClock,
) -> anyhow::Result<(TenantServiceClient<TracedChannel>, AuthLayer)> {
    let tenant = TenantServiceClient::new(
        grpc::service_channel(&grpc::http_uri(tenant_addr))
            .context("invalid tenant service address")?
            .with_bearer(operator_token)?,
    );
    let keys = KeyCache::new(tenant.clone(), clock, MAX_TTL, 100_000);
    Ok((
        tenant,
        AuthLayer::new(Authenticator::new(operator_token, keys)),
    ))
}

/// A service's database on its way up: what to call it in logs, and the pool once connected
/// (for the pool's metrics).
#[derive(Debug, Clone)]
pub struct Database {
    what: String,
    args: DatabaseArgs,
    pool: Arc<OnceLock<DbPool>>,
}

impl Database {
    /// The database of `service` (its name in logs), as `args` give it.
    pub fn new(service: &str, args: &DatabaseArgs) -> Self {
        Self {
            what: format!("{service} database {}", db::redact(&args.url)),
            args: args.clone(),
            pool: Arc::default(),
        }
    }

    /// The pool once connected, for [`crate::metrics::PoolCollector`].
    pub fn pool(&self) -> Arc<OnceLock<DbPool>> {
        self.pool.clone()
    }

    /// Connects, then opens the service's stores with `open` (which migrates them), retrying
    /// both with backoff until they succeed; `None` when shut down first.
    pub async fn open<T, E, F, Fut>(&self, shutdown: &CancellationToken, open: F) -> Option<T>
    where
        E: std::fmt::Display + From<sqlx::Error>,
        F: Fn(DbPool) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let open = &open;
        grpc::retry_until_ready(&self.what, shutdown, || async move {
            let pool = db::connect(&self.args).await?;
            let _ = self.pool.set(pool.clone());
            open(pool).await
        })
        .await
    }

    /// SERVING while `ping` succeeds, checked until shutdown.
    pub async fn keep_health<F, Fut>(&self, health: Health, shutdown: CancellationToken, ping: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        grpc::keep_health(&self.what, health, shutdown, ping).await;
    }
}

/// Serves `routes` while `become_ready` (which opens the database and keeps the health) runs
/// beside it, and stops it when serving ends.
pub async fn serve_becoming_ready(
    listener: TcpListener,
    routes: Routes,
    health: Health,
    auth: Option<AuthLayer>,
    shutdown: CancellationToken,
    args: &ServerArgs,
    become_ready: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let readiness = tokio::spawn(become_ready);
    let served = grpc::serve(listener, routes, health, auth, shutdown, args).await;
    readiness.abort();
    served
}

//! Single-tenant API isolation at the edge.
//!
//! - **Rate limits.** Each tenant has a token bucket filled at its `apiRequestsPerSecond` limit
//!   (burst: one second's worth). A request over it is answered 429 with `Retry-After`.
//! - **Concurrency pools.** Shared-plan tenants share one pool of in-flight requests; each
//!   dedicated-plan tenant has a pool of its own, so a shared tenant flooding the gateway can
//!   fill only the shared pool and never delay a dedicated tenant. The operator is not limited.
//!
//! A request waits for a slot in its pool for at most the request timeout (504 after it).
//!
//! Each admitted request of a tenant's key is counted for the tenant's cost (`METER_API_REQUESTS`);
//! one refused over the rate is not.

use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::{Arc, Mutex, PoisonError},
};

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    middleware::NoOpMiddleware,
    state::{InMemoryState, NotKeyed},
};
use mfg_common::{ErrorCode, auth::Principal};
use mfg_proto::{cost::v1::Meter, tenant::v1::Plan};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{AppState, auth::Caller, error::ApiError};

type Bucket<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

struct TenantBucket<C: Clock> {
    per_second: u32,
    bucket: Bucket<C>,
}

/// Rate limiters per tenant and concurrency pools per plan.
pub struct Isolation<C: Clock = DefaultClock> {
    clock: C,
    buckets: Mutex<HashMap<String, Arc<TenantBucket<C>>>>,
    shared: Arc<Semaphore>,
    dedicated: Mutex<HashMap<String, Arc<Semaphore>>>,
    dedicated_size: usize,
}

impl<C: Clock> std::fmt::Debug for Isolation<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Isolation")
            .field("shared_available", &self.shared.available_permits())
            .field("dedicated_size", &self.dedicated_size)
            .finish_non_exhaustive()
    }
}

/// Why a request was not admitted.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Over the tenant's rate: retry after this many seconds.
    RateLimited {
        /// Whole seconds to wait, at least 1.
        retry_after_secs: u64,
        /// The tenant's limit.
        per_second: u32,
    },
}

impl Isolation<DefaultClock> {
    /// Creates the isolation with pools of the given sizes.
    pub fn new(shared_size: usize, dedicated_size: usize) -> Self {
        Self::with_clock(DefaultClock::default(), shared_size, dedicated_size)
    }
}

impl<C: Clock + Clone> Isolation<C> {
    /// Creates the isolation on a given clock (a fake one in tests).
    pub fn with_clock(clock: C, shared_size: usize, dedicated_size: usize) -> Self {
        Self {
            clock,
            buckets: Mutex::new(HashMap::new()),
            shared: Arc::new(Semaphore::new(shared_size.max(1))),
            dedicated: Mutex::new(HashMap::new()),
            dedicated_size: dedicated_size.max(1),
        }
    }

    /// Takes one token from the tenant's bucket.
    pub fn check_rate(&self, principal: &Principal) -> Result<(), Refusal> {
        let per_second = principal.limits.api_requests_per_second.max(1);
        let bucket = {
            let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
            let entry = buckets
                .entry(principal.tenant_id.clone())
                .or_insert_with(|| self.bucket(per_second));
            if entry.per_second != per_second {
                // The tenant's limit changed: start a bucket at the new rate.
                *entry = self.bucket(per_second);
            }
            entry.clone()
        };
        bucket.bucket.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            // Whole seconds, rounded up, and at least one: `Retry-After: 0` would invite a retry storm.
            let retry_after_secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
            Refusal::RateLimited {
                retry_after_secs,
                per_second,
            }
        })
    }

    fn bucket(&self, per_second: u32) -> Arc<TenantBucket<C>> {
        let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        Arc::new(TenantBucket {
            per_second,
            bucket: RateLimiter::direct_with_clock(Quota::per_second(rate), self.clock.clone()),
        })
    }

    /// Returns the pool a tenant's requests run in.
    pub fn pool(&self, principal: &Principal) -> Arc<Semaphore> {
        if principal.plan == Plan::Dedicated {
            let mut pools = self
                .dedicated
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            pools
                .entry(principal.tenant_id.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(self.dedicated_size)))
                .clone()
        } else {
            self.shared.clone()
        }
    }

    /// Waits for a slot in the tenant's pool.
    pub async fn admit(&self, principal: &Principal) -> OwnedSemaphorePermit {
        self.pool(principal)
            .acquire_owned()
            .await
            .expect("pools are never closed")
    }
}

/// Middleware of every tenant route: authenticates the caller once, then applies the tenant's
/// rate limit and pool for the rest of the request.
pub async fn admission(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = match state.auth().authenticate(request.headers()).await {
        Ok(caller) => caller,
        Err(error) => return ApiError::from(error).into_response(),
    };
    request.extensions_mut().insert(caller.clone());
    let Caller::Tenant(principal) = caller else {
        return next.run(request).await;
    };
    let isolation = state.isolation();
    if let Err(Refusal::RateLimited {
        retry_after_secs,
        per_second,
    }) = isolation.check_rate(&principal)
    {
        return ApiError::new(
            ErrorCode::ResourceExhausted,
            format!("the tenant's limit of {per_second} API requests per second is exceeded; retry after {retry_after_secs} s"),
        )
        .with_retry_after(std::time::Duration::from_secs(retry_after_secs))
        .into_response();
    }
    // A request over the rate is not charged; every admitted one is.
    if let Ok(tenant) = uuid::Uuid::parse_str(&principal.tenant_id) {
        state.meter().add(tenant, Meter::ApiRequests, 1.0);
    }
    let _permit = isolation.admit(&principal).await;
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use governor::clock::FakeRelativeClock;
    use mfg_proto::tenant::v1::Limits;

    use super::*;

    fn principal(tenant: &str, plan: Plan, per_second: u32) -> Principal {
        Principal {
            tenant_id: tenant.to_owned(),
            key_id: "k".to_owned(),
            scopes: vec![],
            suspended: false,
            plan,
            limits: Limits {
                api_requests_per_second: per_second,
                ..Default::default()
            },
        }
    }

    #[test]
    fn each_tenant_has_its_own_bucket_at_its_own_rate() {
        let clock = FakeRelativeClock::default();
        let isolation = Isolation::with_clock(clock.clone(), 8, 8);
        let slow = principal("slow", Plan::Shared, 2);
        let fast = principal("fast", Plan::Shared, 100);
        assert_eq!(isolation.check_rate(&slow), Ok(()));
        assert_eq!(isolation.check_rate(&slow), Ok(()));
        assert_eq!(
            isolation.check_rate(&slow),
            Err(Refusal::RateLimited {
                retry_after_secs: 1,
                per_second: 2
            })
        );
        for _ in 0..100 {
            assert_eq!(
                isolation.check_rate(&fast),
                Ok(()),
                "another tenant's bucket is untouched"
            );
        }
        clock.advance(Duration::from_millis(500));
        assert_eq!(
            isolation.check_rate(&slow),
            Ok(()),
            "refilled at 2 per second"
        );
    }

    #[tokio::test]
    async fn a_flooding_shared_tenant_cannot_delay_a_dedicated_one() {
        let isolation = Isolation::new(4, 2);
        let flooder = principal("flooder", Plan::Shared, 1000);
        let neighbour = principal("neighbour", Plan::Shared, 1000);
        let dedicated = principal("dedicated", Plan::Dedicated, 1000);

        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(isolation.admit(&flooder).await);
        }
        // The shared pool is full: other shared tenants wait...
        let waiting =
            tokio::time::timeout(Duration::from_millis(50), isolation.admit(&neighbour)).await;
        assert!(
            waiting.is_err(),
            "a shared tenant waits while the shared pool is full"
        );
        // ...but the dedicated tenant is admitted at once, up to its own pool's size.
        let first =
            tokio::time::timeout(Duration::from_millis(50), isolation.admit(&dedicated)).await;
        let second =
            tokio::time::timeout(Duration::from_millis(50), isolation.admit(&dedicated)).await;
        assert!(
            first.is_ok() && second.is_ok(),
            "the dedicated tenant has its own pool"
        );

        drop(held);
        let after =
            tokio::time::timeout(Duration::from_millis(50), isolation.admit(&neighbour)).await;
        assert!(after.is_ok(), "slots return to the shared pool");
    }
}

//! Authentication and authorization, the same at the gateway and on every service.
//!
//! A caller presents `Authorization: Bearer <token>` (an HTTP header at the gateway, gRPC
//! metadata on the services): the operator token, or a tenant's API key. Keys are resolved
//! through [`KeyCache`], which answers repeat calls without a round trip, yet never serves a
//! revoked key, or a key of a deleted tenant, for more than its time to live (at most one
//! second). [`Caller::authorize`] then applies the rules: a key acts only inside its own tenant
//! (NOT_FOUND otherwise, so nothing reveals that another tenant exists) and only with its scopes
//! (PERMISSION_DENIED). [`AuthLayer`] does the authentication for a gRPC server.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use futures::future::BoxFuture;

use mfg_proto::tenant::v1 as pb;
use sha2::{Digest as _, Sha256};

use crate::{ErrorCode, ServiceError, clock::SharedClock, grpc::TracedChannel};

/// The longest a cached answer may be served.
pub const MAX_TTL: Duration = Duration::from_secs(1);

/// What an API key may do. Scopes nest: `Admin` includes `Write`, which includes `Read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Read the tenant's data.
    Read,
    /// Also ingest telemetry.
    Write,
    /// Also manage the tenant's keys, machines and alert rules.
    Admin,
}

impl Scope {
    /// Returns whether a key holding `self` may do what `required` allows.
    pub fn allows(self, required: Scope) -> bool {
        self >= required
    }

    /// Returns the scope's name as used in the API (`read`, `write`, `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }

    /// Converts from the protobuf enum; `None` for unspecified or unknown values.
    pub fn from_proto(value: i32) -> Option<Self> {
        match pb::Scope::try_from(value).ok()? {
            pb::Scope::Read => Some(Self::Read),
            pb::Scope::Write => Some(Self::Write),
            pb::Scope::Admin => Some(Self::Admin),
            pb::Scope::Unspecified => None,
        }
    }

    /// Converts to the protobuf enum.
    pub fn to_proto(self) -> pb::Scope {
        match self {
            Self::Read => pb::Scope::Read,
            Self::Write => pb::Scope::Write,
            Self::Admin => pb::Scope::Admin,
        }
    }
}

/// Who an API key belongs to and what it may do.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The tenant's id.
    pub tenant_id: String,
    /// The key's id.
    pub key_id: String,
    /// The key's scopes.
    pub scopes: Vec<Scope>,
    /// Whether the tenant is suspended (its keys authenticate, but writes are refused).
    pub suspended: bool,
    /// The tenant's plan and limits, as the tenant service reported them.
    pub plan: pb::Plan,
    /// The tenant's effective limits.
    pub limits: pb::Limits,
}

impl Principal {
    /// Returns whether any of the key's scopes allows `required`.
    pub fn allows(&self, required: Scope) -> bool {
        self.scopes.iter().any(|scope| scope.allows(required))
    }

    /// Builds a principal from an `AuthenticateKey` answer.
    pub fn from_response(response: pb::AuthenticateKeyResponse) -> Self {
        Self {
            suspended: response.tenant_state() == pb::TenantState::Suspended,
            plan: response.plan(),
            scopes: response
                .scopes
                .iter()
                .filter_map(|s| Scope::from_proto(*s))
                .collect(),
            limits: response.limits.unwrap_or_default(),
            tenant_id: response.tenant_id,
            key_id: response.key_id,
        }
    }
}

/// Why a key was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The key is malformed, unknown, revoked, or of a deleted tenant.
    #[error("{0}")]
    Unauthenticated(String),
    /// The tenant service cannot be reached.
    #[error("cannot check the API key now: {0}")]
    Unavailable(String),
    /// The tenant service failed.
    #[error("cannot check the API key: {0}")]
    Internal(String),
}

impl ServiceError for AuthError {
    fn error_code(&self) -> ErrorCode {
        match self {
            Self::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl From<tonic::Status> for AuthError {
    fn from(status: tonic::Status) -> Self {
        match ErrorCode::from_grpc(status.code()) {
            ErrorCode::Unauthenticated | ErrorCode::InvalidArgument => {
                Self::Unauthenticated(status.message().to_owned())
            }
            ErrorCode::Unavailable | ErrorCode::DeadlineExceeded | ErrorCode::Cancelled => {
                Self::Unavailable(status.message().to_owned())
            }
            _ => Self::Internal(format!("{}: {}", status.code(), status.message())),
        }
    }
}

/// Resolves a key secret to its principal; the tenant service's client in production.
pub trait KeyResolver: Send + Sync + 'static {
    /// Resolves a secret, or says why it is not accepted.
    fn resolve(&self, secret: &str) -> impl Future<Output = Result<Principal, AuthError>> + Send;
}

impl KeyResolver for pb::tenant_service_client::TenantServiceClient<TracedChannel> {
    async fn resolve(&self, secret: &str) -> Result<Principal, AuthError> {
        let response = self
            .clone()
            .authenticate_key(pb::AuthenticateKeyRequest {
                secret: secret.to_owned(),
            })
            .await?;
        Ok(Principal::from_response(response.into_inner()))
    }
}

struct Entry {
    expires: Instant,
    principal: Arc<Principal>,
}

/// A cache of [`KeyResolver`] answers with a time to live of at most [`MAX_TTL`].
///
/// An entry's life starts when its lookup was *sent*, so an answer given before a revocation
/// is never served more than the time to live after it. Failures are not cached. Secrets are
/// kept only as SHA-256 digests.
pub struct KeyCache<R> {
    resolver: R,
    clock: SharedClock,
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

impl<R> std::fmt::Debug for KeyCache<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache")
            .field("ttl", &self.ttl)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl<R: KeyResolver> KeyCache<R> {
    /// Creates a cache; a `ttl` above [`MAX_TTL`] is lowered to it.
    pub fn new(resolver: R, clock: SharedClock, ttl: Duration, capacity: usize) -> Self {
        Self {
            resolver,
            clock,
            ttl: ttl.min(MAX_TTL),
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Returns the principal of a secret, from the cache when fresh.
    pub async fn authenticate(&self, secret: &str) -> Result<Arc<Principal>, AuthError> {
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let sent = self.clock.now();
        if let Some(principal) = self.lookup(&digest, sent) {
            return Ok(principal);
        }
        let principal = Arc::new(self.resolver.resolve(secret).await?);
        self.store(digest, sent + self.ttl, principal.clone());
        Ok(principal)
    }

    fn lookup(&self, digest: &[u8; 32], now: Instant) -> Option<Arc<Principal>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(digest)
            .filter(|entry| now < entry.expires)
            .map(|entry| entry.principal.clone())
    }

    fn store(&self, digest: [u8; 32], expires: Instant, principal: Arc<Principal>) {
        let now = self.clock.now();
        if now >= expires {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity {
            entries.retain(|_, entry| now < entry.expires);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(digest, Entry { expires, principal });
    }
}

/// The metadata in which the gateway, calling as the operator, names the key it authenticated.
pub const ON_BEHALF_OF: &str = "x-mfg-on-behalf-of";

/// The caller of a request, once authenticated.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The platform operator (also the credential services use to call each other).
    Operator,
    /// A tenant's API key.
    Tenant(Arc<Principal>),
}

/// Why an authenticated caller may not do something.
#[derive(Debug, thiserror::Error)]
pub enum Denied {
    /// The request addresses another tenant; answered as if it did not exist.
    #[error("tenant `{0}` not found")]
    OtherTenant(String),
    /// The key lacks a scope.
    #[error("the API key lacks the `{0}` scope")]
    MissingScope(&'static str),
    /// Only the operator may do this.
    #[error("only the operator may do this")]
    OperatorOnly,
    /// The tenant is suspended: its keys may read, not write.
    #[error("tenant `{0}` is suspended: its keys may read, not write")]
    Suspended(String),
}

impl ServiceError for Denied {
    fn error_code(&self) -> ErrorCode {
        match self {
            Self::OtherTenant(_) => ErrorCode::NotFound,
            Self::MissingScope(_) | Self::OperatorOnly => ErrorCode::PermissionDenied,
            Self::Suspended(_) => ErrorCode::FailedPrecondition,
        }
    }
}

impl From<Denied> for tonic::Status {
    fn from(denied: Denied) -> Self {
        crate::error::to_status(&denied)
    }
}

/// Who may call an RPC, as the contract declares it in its `mfg.options.v1.access` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A key of the tenant the request names, holding the scope; or the operator.
    Tenant(Scope),
    /// Only the operator. When the request names a tenant, a key of another tenant is answered
    /// as if it did not exist, and a key of that tenant is checked against the scope first.
    Operator(Option<Scope>),
    /// Only the platform's own services, which call with the operator credential.
    Internal,
    /// Any authenticated caller: a key of any tenant holding the scope, or the operator.
    AnyKey(Scope),
}

impl Access {
    /// A sentence for documents and logs.
    pub fn describe(self) -> String {
        match self {
            Self::Tenant(scope) => {
                format!(
                    "the operator, or a key of the tenant with the `{}` scope",
                    scope.as_str()
                )
            }
            Self::Operator(_) => "the operator only".to_owned(),
            Self::Internal => "the platform's own services only (internal)".to_owned(),
            Self::AnyKey(scope) => format!(
                "the operator, or a key of any tenant with the `{}` scope",
                scope.as_str()
            ),
        }
    }
}

impl Caller {
    /// Checks the caller against an RPC's declared access, for the tenant the request names.
    pub fn permits(&self, access: Access, tenant_id: Option<&str>) -> Result<(), Denied> {
        match access {
            Access::Tenant(scope) => self.authorize(tenant_id.unwrap_or_default(), scope),
            Access::Operator(scope) => {
                // An empty tenant addresses none (an operator's listing of every tenant's).
                if let Some(tenant_id) = tenant_id.filter(|t| !t.is_empty()) {
                    self.authorize(tenant_id, scope.unwrap_or(Scope::Read))?;
                }
                self.require_operator()
            }
            Access::Internal => self.require_operator(),
            Access::AnyKey(scope) => match self {
                Self::Operator => Ok(()),
                Self::Tenant(principal) if principal.allows(scope) => Ok(()),
                Self::Tenant(_) => Err(Denied::MissingScope(scope.as_str())),
            },
        }
    }

    /// Allows only the operator.
    pub fn require_operator(&self) -> Result<(), Denied> {
        match self {
            Self::Operator => Ok(()),
            Self::Tenant(_) => Err(Denied::OperatorOnly),
        }
    }

    /// Allows the operator, and a key of `tenant_id` holding `scope`. Another tenant's key gets
    /// [`Denied::OtherTenant`] before its scopes are looked at; a suspended tenant's key may only
    /// read.
    pub fn authorize(&self, tenant_id: &str, scope: Scope) -> Result<(), Denied> {
        match self {
            Self::Operator => Ok(()),
            Self::Tenant(principal) if principal.tenant_id != tenant_id => {
                Err(Denied::OtherTenant(tenant_id.to_owned()))
            }
            Self::Tenant(principal) if !principal.allows(scope) => {
                Err(Denied::MissingScope(scope.as_str()))
            }
            Self::Tenant(principal) if principal.suspended && scope > Scope::Read => {
                Err(Denied::Suspended(tenant_id.to_owned()))
            }
            Self::Tenant(_) => Ok(()),
        }
    }

    /// Returns the caller of a gRPC request, as [`AuthLayer`] left it; UNAUTHENTICATED when the
    /// server has no such layer.
    pub fn of<T>(request: &tonic::Request<T>) -> Result<Self, tonic::Status> {
        request.extensions().get::<Self>().cloned().ok_or_else(|| {
            tonic::Status::unauthenticated("no credentials were checked for this call")
        })
    }

    /// Returns who the caller is, for audit fields (`operator` or `key:<id>`).
    pub fn actor(&self) -> String {
        match self {
            Self::Operator => "operator".to_owned(),
            Self::Tenant(principal) => format!("key:{}", principal.key_id),
        }
    }

    /// Returns who acts in a gRPC request, for audit fields: the caller's [`Caller::actor`],
    /// or, when the operator calls (the gateway does, for every REST request), the key it names
    /// in [`ON_BEHALF_OF`]. Only the operator may say on whose behalf it calls.
    pub fn acting<T>(request: &tonic::Request<T>) -> Result<String, tonic::Status> {
        Ok(match Self::of(request)? {
            Self::Operator => request
                .metadata()
                .get(ON_BEHALF_OF)
                .and_then(|value| value.to_str().ok())
                .filter(|value| value.starts_with("key:") && value.len() <= 100)
                .unwrap_or("operator")
                .to_owned(),
            tenant => tenant.actor(),
        })
    }
}

trait KeyLookup: Send + Sync + 'static {
    fn lookup<'a>(&'a self, secret: &'a str) -> BoxFuture<'a, Result<Arc<Principal>, AuthError>>;
}

impl<R: KeyResolver> KeyLookup for KeyCache<R> {
    fn lookup<'a>(&'a self, secret: &'a str) -> BoxFuture<'a, Result<Arc<Principal>, AuthError>> {
        Box::pin(self.authenticate(secret))
    }
}

/// Resolves bearer tokens: the operator token, compared by digest, or an API key through a
/// [`KeyCache`].
#[derive(Clone)]
pub struct Authenticator {
    operator_digest: [u8; 32],
    keys: Arc<dyn KeyLookup>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Creates an authenticator for an operator token and a key cache.
    pub fn new<R: KeyResolver>(operator_token: &str, keys: KeyCache<R>) -> Self {
        Self {
            operator_digest: Sha256::digest(operator_token.as_bytes()).into(),
            keys: Arc::new(keys),
        }
    }

    /// Resolves the `Authorization: Bearer <token>` header (or gRPC metadata) of a request.
    pub async fn authenticate(&self, headers: &http::HeaderMap) -> Result<Caller, AuthError> {
        let header = headers.get(http::header::AUTHORIZATION).ok_or_else(|| {
            AuthError::Unauthenticated("missing `Authorization: Bearer <token>`".to_owned())
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                AuthError::Unauthenticated("`Authorization` must be `Bearer <token>`".to_owned())
            })?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Comparing digests does not leak the token through timing.
        if digest == self.operator_digest {
            return Ok(Caller::Operator);
        }
        Ok(Caller::Tenant(self.keys.lookup(token).await?))
    }
}

/// A tower layer for gRPC servers that authenticates every call, checks it against the access
/// the contract declares for its RPC ([`crate::access`]), and leaves the [`Caller`] in the
/// request's extensions. Health checks and reflection stay open.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    authenticator: Authenticator,
}

impl AuthLayer {
    /// Creates the layer.
    pub fn new(authenticator: Authenticator) -> Self {
        Self { authenticator }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            authenticator: self.authenticator.clone(),
        }
    }
}

/// The service made by [`AuthLayer`].
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    authenticator: Authenticator,
}

impl<S> tower::Service<http::Request<tonic::body::Body>> for AuthService<S>
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
        > + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        // The service that was polled ready handles this call; its clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let open = request.uri().path().starts_with("/grpc.");
        let authenticator = self.authenticator.clone();
        Box::pin(async move {
            if open {
                return inner.call(request).await;
            }
            let caller = match authenticator.authenticate(request.headers()).await {
                Ok(caller) => caller,
                Err(error) => return Ok(crate::error::to_status(&error).into_http()),
            };
            // Who may call what is the contract's, checked here for every RPC.
            let mut request = match crate::access::enforce(&caller, request).await {
                Ok(request) => request,
                Err(status) => return Ok(status.into_http()),
            };
            request.extensions_mut().insert(caller);
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest() {
        assert!(Scope::Admin.allows(Scope::Write));
        assert!(Scope::Write.allows(Scope::Read));
        assert!(!Scope::Read.allows(Scope::Write));
        assert!(!Scope::Write.allows(Scope::Admin));
    }

    #[test]
    fn any_key_with_the_scope_is_let_through_whatever_its_tenant() {
        let key = |scopes: Vec<Scope>| {
            Caller::Tenant(Arc::new(Principal {
                tenant_id: "acme".to_owned(),
                key_id: "k".to_owned(),
                scopes,
                suspended: false,
                plan: pb::Plan::Shared,
                limits: pb::Limits::default(),
            }))
        };
        let reader = key(vec![Scope::Read]);
        assert!(reader.permits(Access::AnyKey(Scope::Read), None).is_ok());
        assert!(
            reader
                .permits(Access::AnyKey(Scope::Read), Some("globex"))
                .is_ok()
        );
        assert!(matches!(
            reader.permits(Access::AnyKey(Scope::Write), None),
            Err(Denied::MissingScope("write"))
        ));
        assert!(matches!(
            key(Vec::new()).permits(Access::AnyKey(Scope::Read), None),
            Err(Denied::MissingScope("read"))
        ));
        assert!(
            Caller::Operator
                .permits(Access::AnyKey(Scope::Admin), None)
                .is_ok()
        );
        assert!(matches!(
            reader.permits(Access::Operator(None), None),
            Err(Denied::OperatorOnly)
        ));
    }
}

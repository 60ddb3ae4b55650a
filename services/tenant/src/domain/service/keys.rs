//! The tenant service's operations on API keys: creating them, shown once or sealed until the
//! operator claims them, listing, revoking, and authenticating a secret.

use mfg_common::{
    Violations, audit::Asker, labels::validate_display_name, pagination::PageRequest,
};

use super::{CreatedKey, Tenants, invalid, page_after};
use crate::{
    domain::{
        Scope, Tenant, TenantId, TenantState,
        api_key::{ApiKey, KeyId, KeyRecord, NewApiKey, NewSecret, parse_secret},
    },
    error::{Result, TenantError},
};

impl Tenants {
    /// Creates a key for a tenant that is not deleted, returning its secret once.
    pub async fn create_api_key(
        &self,
        tenant: TenantId,
        display_name: String,
        scopes: Vec<Scope>,
        asker: &Asker,
    ) -> Result<CreatedKey> {
        let scopes = key_scopes(&display_name, scopes)?;
        let NewSecret { key_id, secret } = NewSecret::generate().map_err(no_randomness)?;
        let key = self.new_key(key_id, tenant, display_name, scopes);
        let new = NewApiKey {
            key: key.clone(),
            secret_hash: self.hasher.hash(&secret),
            sealed_secret: None,
        };
        let audit = self.audit(asker, tenant, "api_key.create", key_path(tenant, key_id));
        self.store.insert_api_key(&new, audit.as_ref()).await?;
        self.auditor.recorded();
        tracing::info!(tenant_id = %tenant, key_id = %key_id, "api key created");
        Ok(CreatedKey { key, secret })
    }

    /// Creates a key under `key_id` for a tenant that is not deleted, its secret sealed until
    /// the operator claims it. A key of the tenant under that id already is returned as it is,
    /// so that a retried call has one effect.
    pub async fn create_sealed_api_key(
        &self,
        tenant: TenantId,
        key_id: KeyId,
        display_name: String,
        scopes: Vec<Scope>,
    ) -> Result<ApiKey> {
        let scopes = key_scopes(&display_name, scopes)?;
        if let Some(found) = self.store.get_api_key(tenant, key_id).await? {
            return Ok(found);
        }
        let NewSecret { secret, .. } = NewSecret::for_key(key_id).map_err(no_randomness)?;
        let mut key = self.new_key(key_id, tenant, display_name, scopes);
        key.secret_claimable = true;
        let new = NewApiKey {
            key: key.clone(),
            secret_hash: self.hasher.hash(&secret),
            sealed_secret: Some(self.sealer.seal(key_id, &secret).map_err(no_randomness)?),
        };
        // The provisioning service, which asks for it, records its step itself.
        match self.store.insert_api_key(&new, None).await {
            Ok(()) => {}
            // Created meanwhile by another attempt; another tenant's id stays refused.
            Err(TenantError::ApiKeyExists(id)) => {
                return self
                    .store
                    .get_api_key(tenant, key_id)
                    .await?
                    .ok_or(TenantError::ApiKeyExists(id));
            }
            Err(error) => return Err(error),
        }
        tracing::info!(tenant_id = %tenant, key_id = %key_id, "sealed api key created");
        Ok(key)
    }

    /// Returns a sealed key's secret and erases the sealed copy: once, even with two claims
    /// at once. A copy that does not open (the pepper changed) is kept, and the claim fails.
    pub async fn claim_api_key_secret(
        &self,
        tenant: TenantId,
        key_id: KeyId,
        asker: &Asker,
    ) -> Result<CreatedKey> {
        let nothing = || TenantError::NothingToClaim(key_id.to_string());
        let sealed = self
            .store
            .sealed_secret(tenant, key_id)
            .await?
            .ok_or_else(nothing)?;
        let secret = self
            .sealer
            .open(key_id, &sealed)
            .map_err(|error| TenantError::Internal(error.to_string()))?;
        let audit = self.audit(
            asker,
            tenant,
            "api_key.claim_secret",
            key_path(tenant, key_id),
        );
        if !self
            .store
            .erase_sealed_secret(tenant, key_id, &sealed, audit.as_ref())
            .await?
        {
            return Err(nothing());
        }
        self.auditor.recorded();
        let key = self
            .store
            .get_api_key(tenant, key_id)
            .await?
            .ok_or_else(|| TenantError::ApiKeyNotFound(key_id.to_string()))?;
        tracing::info!(tenant_id = %tenant, key_id = %key_id, "api key secret claimed");
        Ok(CreatedKey { key, secret })
    }

    /// A key of `tenant` created now.
    fn new_key(
        &self,
        key_id: KeyId,
        tenant: TenantId,
        display_name: String,
        scopes: Vec<Scope>,
    ) -> ApiKey {
        ApiKey {
            key_id,
            tenant_id: tenant,
            display_name,
            scopes,
            create_time: self.now(),
            revoke_time: None,
            secret_claimable: false,
        }
    }

    /// Lists a tenant's keys, revoked ones included.
    pub async fn list_api_keys(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<(Vec<ApiKey>, String)> {
        self.get_tenant(tenant).await?;
        let after = page_after::<KeyId>(&page)?;
        let mut keys = self
            .store
            .list_api_keys(tenant, after, page.fetch_limit())
            .await?;
        let next = page.finish(&mut keys, |k| k.key_id.to_string());
        Ok((keys, next))
    }

    /// Revokes a key; revoking a revoked key returns it unchanged.
    pub async fn revoke_api_key(
        &self,
        tenant: TenantId,
        key: KeyId,
        asker: &Asker,
    ) -> Result<ApiKey> {
        let audit = self.audit(asker, tenant, "api_key.revoke", key_path(tenant, key));
        let key = self
            .store
            .revoke_api_key(tenant, key, self.now(), audit.as_ref())
            .await?;
        self.auditor.recorded();
        tracing::info!(tenant_id = %tenant, key_id = %key.key_id, "api key revoked");
        Ok(key)
    }

    /// The key a caller authenticated with, and its tenant: who a key's caller is.
    pub async fn caller(&self, key_id: KeyId) -> Result<(ApiKey, Tenant)> {
        let record = self
            .store
            .find_key(key_id)
            .await?
            .ok_or_else(|| TenantError::ApiKeyNotFound(key_id.to_string()))?;
        let tenant = self.get_tenant(record.key.tenant_id).await?;
        Ok((record.key, tenant))
    }

    /// Resolves a secret to its key and tenant, refusing malformed, unknown and revoked keys and
    /// keys of deleted tenants.
    pub async fn authenticate(&self, secret: &str) -> Result<KeyRecord> {
        const INVALID: &str = "invalid API key";
        let key_id = parse_secret(secret).ok_or(TenantError::Unauthenticated(INVALID))?;
        let record = self
            .store
            .find_key(key_id)
            .await?
            .ok_or(TenantError::Unauthenticated(INVALID))?;
        if !self.hasher.verify(secret, &record.secret_hash) {
            return Err(TenantError::Unauthenticated(INVALID));
        }
        if record.key.revoke_time.is_some() {
            return Err(TenantError::Unauthenticated("the API key was revoked"));
        }
        if record.tenant_state == TenantState::Deleted {
            return Err(TenantError::Unauthenticated(
                "the API key's tenant was deleted",
            ));
        }
        Ok(record)
    }
}

/// A new key's scopes, sorted and without repeats, once its name and scopes are valid.
fn key_scopes(display_name: &str, mut scopes: Vec<Scope>) -> Result<Vec<Scope>> {
    let mut violations = Violations::new();
    violations.check("display_name", validate_display_name(display_name));
    if scopes.is_empty() {
        violations.add(
            "scopes",
            "at least one of SCOPE_READ, SCOPE_WRITE or SCOPE_ADMIN is required",
        );
    }
    invalid(violations)?;
    scopes.sort();
    scopes.dedup();
    Ok(scopes)
}

/// The error of a secret that could not be drawn.
fn no_randomness(error: getrandom::Error) -> TenantError {
    TenantError::Internal(format!("no randomness for a key: {error}"))
}

/// A key's path, as the audit log names it.
fn key_path(tenant: TenantId, key: KeyId) -> String {
    format!("tenants/{tenant}/api-keys/{key}")
}

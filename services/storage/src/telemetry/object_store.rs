//! Object storage for the cold tier: a small trait with two implementations, S3 (through
//! aws-sdk-s3, for AWS S3, MinIO and other S3-compatible stores) and a local directory (the
//! embedded default), with the same key layout. Errors are classified as not found, retryable
//! or permanent, so the archive job knows whether to try again.
//!
//! A `put` returns only once the object is durable; nothing is deleted from the hot tier before
//! the object is stored and verified.
//!
//! Lifecycle rules are per prefix (per tenant). S3 keeps one lifecycle configuration per bucket,
//! so setting a rule reads, changes and writes it back; each store serializes its own updates,
//! and the storage service is the bucket's only writer of lifecycle rules.

mod local;
mod s3;

use std::fmt::{self, Debug};

use async_trait::async_trait;
use bytes::Bytes;

pub use crate::telemetry::object_store::{
    local::LocalStore,
    s3::{DEFAULT_ATTEMPT_TIMEOUT, S3Config, S3Store},
};

/// A key in the object store: a relative path of `/`-separated segments of `[A-Za-z0-9=._-]`,
/// e.g. `telemetry/v1/tenant=<id>/dt=2026-11-24/part-0001.parquet`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// Validates a key.
    pub fn new(key: impl Into<String>) -> Result<Self, ObjectError> {
        let key = key.into();
        let valid_segment = |segment: &str| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"=._-".contains(&b))
        };
        if key.len() > 1024 || !key.split('/').all(valid_segment) {
            return Err(ObjectError::Permanent(format!(
                "`{key}` is not an object key (relative `/`-separated segments of A-Z a-z 0-9 = . _ -)"
            )));
        }
        Ok(Self(key))
    }

    /// Returns the key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the store knows of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Its key.
    pub key: ObjectKey,
    /// Its size in bytes.
    pub size: u64,
}

/// Why an object operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    /// There is no such object.
    #[error("object `{0}` not found")]
    NotFound(String),
    /// A failure that may pass: network, throttling, a 5xx. Try again later.
    #[error("object store unavailable: {0}")]
    Retryable(String),
    /// A failure that will not pass by retrying: credentials, a missing bucket, a bad key.
    #[error("object store refused: {0}")]
    Permanent(String),
}

/// The shortest transition S3 accepts to the infrequent-access class.
pub const MIN_TRANSITION_DAYS: u32 = 30;

/// The lifecycle of one prefix (one tenant's archive): objects move to infrequent-access
/// storage after some days, and are deleted at the end of the tenant's cold retention.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LifecycleRule {
    /// The rule's id, e.g. `tenant-<uuid>`; setting a rule replaces the one with the same id.
    pub id: String,
    /// The prefix it applies to.
    pub prefix: String,
    /// Days after which objects move to infrequent-access storage (at least 30); `None` keeps
    /// them where they are.
    pub transition_after_days: Option<u32>,
    /// Days after which objects are deleted.
    pub expire_after_days: u32,
}

impl LifecycleRule {
    /// Checks what S3 would refuse, before asking it.
    pub fn validate(&self) -> Result<(), ObjectError> {
        let invalid = |why: String| {
            Err(ObjectError::Permanent(format!(
                "lifecycle rule `{}`: {why}",
                self.id
            )))
        };
        if self.id.is_empty() || self.id.len() > 255 {
            return invalid("the id must be 1 to 255 characters".to_owned());
        }
        if self.expire_after_days == 0 {
            return invalid("objects must live at least one day".to_owned());
        }
        if let Some(days) = self.transition_after_days {
            if days < MIN_TRANSITION_DAYS {
                return invalid(format!(
                    "a transition takes at least {MIN_TRANSITION_DAYS} days"
                ));
            }
            if days >= self.expire_after_days {
                return invalid("objects must move before they expire".to_owned());
            }
        }
        Ok(())
    }
}

/// Where archived objects live.
#[async_trait]
pub trait ObjectStore: Send + Sync + Debug + 'static {
    /// Stores an object, replacing any with the same key; durable when it returns.
    async fn put(&self, key: &ObjectKey, body: Bytes) -> Result<(), ObjectError>;
    /// Reads an object whole.
    async fn get(&self, key: &ObjectKey) -> Result<Bytes, ObjectError>;
    /// Reads the bytes `range` of an object, which lies within it (an HTTP range request).
    async fn get_range(
        &self,
        key: &ObjectKey,
        range: std::ops::Range<u64>,
    ) -> Result<Bytes, ObjectError>;
    /// Returns an object's size without reading it, to verify what was stored.
    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, ObjectError>;
    /// Lists every object whose key starts with `prefix`, in key order.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, ObjectError>;
    /// Deletes an object; deleting a missing object succeeds.
    async fn delete(&self, key: &ObjectKey) -> Result<(), ObjectError>;

    /// Returns the lifecycle rules, by id.
    async fn lifecycle_rules(&self) -> Result<Vec<LifecycleRule>, ObjectError>;
    /// Sets a lifecycle rule, replacing the one with the same id and keeping the others.
    async fn put_lifecycle_rule(&self, rule: &LifecycleRule) -> Result<(), ObjectError>;
    /// Removes a lifecycle rule; removing a missing rule succeeds.
    async fn delete_lifecycle_rule(&self, id: &str) -> Result<(), ObjectError>;
}

/// Returns `rules` with `rule` set (replacing its id) or, for `None`, `id` removed, by id.
fn with_rule(
    mut rules: Vec<LifecycleRule>,
    id: &str,
    rule: Option<&LifecycleRule>,
) -> Vec<LifecycleRule> {
    rules.retain(|r| r.id != id);
    rules.extend(rule.cloned());
    rules.sort_by(|a, b| a.id.cmp(&b.id));
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_relative_paths_of_safe_segments() {
        for ok in [
            "a",
            "telemetry/v1/tenant=01a2-b/dt=2026-11-24/part-0001.parquet",
            "manifest.json",
        ] {
            assert!(ObjectKey::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/abs", "a//b", "a/../b", "./a", "a/", "a b", "a:b", "ü"] {
            assert!(ObjectKey::new(bad).is_err(), "{bad}");
        }
    }
}

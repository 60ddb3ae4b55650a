//! How many alert subscriptions (gRPC `SubscribeAlerts` streams, and the gateway's SSE streams,
//! which are such streams on a key's behalf) a key and a tenant may hold at once. Each costs a
//! task, buffers and a place in the fan-out; without a cap, one read key could open thousands.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use uuid::Uuid;

use crate::error::StorageError;

/// The caps, and the subscriptions held.
#[derive(Debug)]
pub struct SubscriberCaps {
    per_key: usize,
    per_tenant: usize,
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    tenants: HashMap<Uuid, usize>,
    keys: HashMap<String, usize>,
}

impl SubscriberCaps {
    /// How many subscriptions are held, all tenants together.
    pub fn held(&self) -> usize {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.tenants.values().sum()
    }

    /// Caps of `per_key` subscriptions for one key and `per_tenant` for one tenant.
    pub fn new(per_key: usize, per_tenant: usize) -> Arc<Self> {
        Arc::new(Self {
            per_key: per_key.max(1),
            per_tenant: per_tenant.max(1),
            held: Mutex::default(),
        })
    }

    /// Admits one more subscription of `tenant`, opened by `key` (`None` for the operator), or
    /// refuses it with RESOURCE_EXHAUSTED naming the cap it would pass.
    pub fn admit(
        self: &Arc<Self>,
        tenant: Uuid,
        key: Option<String>,
    ) -> Result<SubscriberSlot, StorageError> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if held.tenants.get(&tenant).copied().unwrap_or(0) >= self.per_tenant {
            return Err(StorageError::TooManySubscribers {
                holder: "tenant",
                limit: self.per_tenant,
                setting: "--alert-subscribers-per-tenant",
            });
        }
        if let Some(key) = &key
            && held.keys.get(key).copied().unwrap_or(0) >= self.per_key
        {
            return Err(StorageError::TooManySubscribers {
                holder: "API key",
                limit: self.per_key,
                setting: "--alert-subscribers-per-key",
            });
        }
        *held.tenants.entry(tenant).or_default() += 1;
        if let Some(key) = &key {
            *held.keys.entry(key.clone()).or_default() += 1;
        }
        Ok(SubscriberSlot {
            caps: self.clone(),
            tenant,
            key,
        })
    }
}

/// One subscription's place under the caps, given back when it is dropped.
#[derive(Debug)]
pub struct SubscriberSlot {
    caps: Arc<SubscriberCaps>,
    tenant: Uuid,
    key: Option<String>,
}

fn give_back<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: &K) {
    if let Some(count) = counts.get_mut(key) {
        *count -= 1;
        if *count == 0 {
            counts.remove(key);
        }
    }
}

impl Drop for SubscriberSlot {
    fn drop(&mut self) {
        let mut held = self
            .caps
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        give_back(&mut held.tenants, &self.tenant);
        if let Some(key) = &self.key {
            give_back(&mut held.keys, key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_tenants_hold_at_most_their_caps() {
        let caps = SubscriberCaps::new(2, 3);
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let key = || Some("key:1".to_owned());
        let first = caps.admit(a, key()).unwrap();
        let _second = caps.admit(a, key()).unwrap();
        let refused = caps.admit(a, key()).unwrap_err().to_string();
        assert!(refused.contains("--alert-subscribers-per-key"), "{refused}");
        let _operator = caps.admit(a, None).unwrap();
        let refused = caps.admit(a, None).unwrap_err().to_string();
        assert!(
            refused.contains("--alert-subscribers-per-tenant"),
            "{refused}"
        );
        let _other_tenant = caps.admit(b, None).unwrap();
        drop(first);
        caps.admit(a, key()).expect("a place was given back");
    }
}

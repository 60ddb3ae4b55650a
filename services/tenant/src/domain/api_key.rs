//! API keys: secrets of the form `mfg_<key id>_<random>`, with 256 random bits from the
//! operating system's CSPRNG, of which only an HMAC-SHA-256 under a server-side pepper is kept.

use std::{fmt, str::FromStr};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use mfg_common::auth::Scope;
use sha2::Sha256;
use uuid::Uuid;

use super::tenant::{Limits, Plan, TenantId, TenantState};

const SECRET_PREFIX: &str = "mfg_";
const RANDOM_BYTES: usize = 32;

/// An API key's id: a UUID v7, written as 32 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub Uuid);

impl KeyId {
    /// Creates a new, time-ordered id.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.simple().fmt(f)
    }
}

impl FromStr for KeyId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err("is required".to_owned());
        }
        if s.len() != 32
            || !s
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(format!("`{s}` is not a key id (32 lowercase hex digits)"));
        }
        Uuid::parse_str(s)
            .map(Self)
            .map_err(|_| format!("`{s}` is not a key id"))
    }
}

/// A freshly generated secret and its key id.
#[derive(Debug)]
pub struct NewSecret {
    /// The key's id, embedded in the secret.
    pub key_id: KeyId,
    /// The secret, to be shown once.
    pub secret: String,
}

impl NewSecret {
    /// Generates a secret with 256 bits from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, getrandom::Error> {
        Self::for_key(KeyId::generate())
    }

    /// Generates a secret of the key `key_id`, with 256 bits from the operating system's CSPRNG.
    pub fn for_key(key_id: KeyId) -> Result<Self, getrandom::Error> {
        let mut random = [0u8; RANDOM_BYTES];
        getrandom::fill(&mut random)?;
        let secret = format!("{SECRET_PREFIX}{key_id}_{}", URL_SAFE_NO_PAD.encode(random));
        Ok(Self { key_id, secret })
    }
}

/// Returns the key id of a well-formed secret, `None` for anything else.
pub fn parse_secret(secret: &str) -> Option<KeyId> {
    let rest = secret.strip_prefix(SECRET_PREFIX)?;
    let (key_id, random) = rest.split_at_checked(32)?;
    let random = random.strip_prefix('_')?;
    let decoded = URL_SAFE_NO_PAD.decode(random).ok()?;
    if decoded.len() != RANDOM_BYTES {
        return None;
    }
    key_id.parse().ok()
}

/// Hashes secrets with HMAC-SHA-256 under the server's pepper, and checks them in constant time.
#[derive(Clone)]
pub struct KeyHasher {
    pepper: Vec<u8>,
}

impl fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyHasher(..)")
    }
}

/// The shortest pepper accepted, in bytes.
pub const MIN_PEPPER_LEN: usize = 16;

impl KeyHasher {
    /// Creates a hasher; the pepper must be at least 16 bytes.
    pub fn new(pepper: &[u8]) -> Result<Self, String> {
        if pepper.len() < MIN_PEPPER_LEN {
            return Err(format!(
                "the key pepper must be at least {MIN_PEPPER_LEN} bytes"
            ));
        }
        Ok(Self {
            pepper: pepper.to_vec(),
        })
    }

    fn mac(&self, secret: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.pepper)
            .expect("HMAC accepts keys of any length");
        mac.update(secret.as_bytes());
        mac
    }

    /// Returns the keyed hash of a secret.
    pub fn hash(&self, secret: &str) -> Vec<u8> {
        self.mac(secret).finalize().into_bytes().to_vec()
    }

    /// The sealer of secrets to be claimed, its key derived from the same pepper.
    pub fn sealer(&self) -> super::Sealer {
        super::Sealer::from_pepper(&self.pepper)
    }

    /// Checks a secret against a stored hash in constant time.
    pub fn verify(&self, secret: &str, stored: &[u8]) -> bool {
        self.mac(secret).verify_slice(stored).is_ok()
    }
}

/// An API key, without its secret.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    /// Its id.
    pub key_id: KeyId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Its human-readable name.
    pub display_name: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// When it was created.
    pub create_time: DateTime<Utc>,
    /// When it was revoked.
    pub revoke_time: Option<DateTime<Utc>>,
    /// Whether its secret is kept sealed until the operator claims it.
    pub secret_claimable: bool,
}

/// A key to store: the key, the hash of its secret, and the secret sealed when it is to be
/// claimed later.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// The key.
    pub key: ApiKey,
    /// The keyed hash of its secret.
    pub secret_hash: Vec<u8>,
    /// The secret, sealed ([`super::Sealer`]), when nobody was shown it.
    pub sealed_secret: Option<Vec<u8>>,
}

/// What authentication needs to know about a key and its tenant, read in one query.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    /// The key.
    pub key: ApiKey,
    /// The keyed hash of its secret.
    pub secret_hash: Vec<u8>,
    /// Its tenant's state.
    pub tenant_state: TenantState,
    /// Its tenant's plan.
    pub plan: Plan,
    /// Its tenant's limits.
    pub limits: Limits,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn secrets_carry_their_key_id_and_256_random_bits() {
        let first = NewSecret::generate().unwrap();
        let second = NewSecret::generate().unwrap();
        assert_ne!(first.secret, second.secret);
        assert!(first.secret.starts_with("mfg_"));
        assert_eq!(parse_secret(&first.secret), Some(first.key_id));
        // The random part may itself contain `_` (base64url), so it is found by position.
        let random = &first.secret["mfg_".len() + 32 + 1..];
        assert_eq!(URL_SAFE_NO_PAD.decode(random).unwrap().len(), 32);
    }

    #[test]
    fn malformed_secrets_are_refused() {
        let good = NewSecret::generate().unwrap().secret;
        assert_eq!(parse_secret(""), None);
        assert_eq!(parse_secret("Bearer x"), None);
        assert_eq!(parse_secret(&good.replacen("mfg_", "mfx_", 1)), None);
        assert_eq!(parse_secret(&good[..good.len() - 2]), None);
        assert_eq!(parse_secret(&format!("{good}AA")), None);
    }

    #[test]
    fn hashes_depend_on_the_pepper_and_verify_exactly() {
        let secret = NewSecret::generate().unwrap().secret;
        let hasher = KeyHasher::new(b"0123456789abcdef").unwrap();
        let other = KeyHasher::new(b"fedcba9876543210").unwrap();
        let hash = hasher.hash(&secret);
        assert_eq!(hash.len(), 32);
        assert!(hasher.verify(&secret, &hash));
        assert!(!other.verify(&secret, &hash));
        assert!(!hasher.verify(&format!("{secret}x"), &hash));
        assert!(!hasher.verify(&secret, &hash[..31]));
        assert!(KeyHasher::new(b"short").is_err());
    }

    #[test]
    fn every_generated_secret_parses() {
        for _ in 0..2000 {
            let new = NewSecret::generate().unwrap();
            assert_eq!(
                parse_secret(&new.secret),
                Some(new.key_id),
                "{}",
                new.secret
            );
        }
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_text_never_panics(s in "\\PC{0,120}") {
            let _ = parse_secret(&s);
        }
    }
}

//! Secrets kept sealed until claimed: a key created by onboarding has a secret that nobody is
//! shown when it is made, so it is kept encrypted (AES-256-GCM) until the operator claims it,
//! and erased then (decision 0014). The sealing key is derived from the server's pepper, so it
//! needs no configuration of its own, and the key id is the ciphertext's associated data, so a
//! sealed secret opens only as the secret of its own key.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use sha2::Sha256;

use super::api_key::KeyId;

/// What the sealing key is derived for, so that it differs from every other use of the pepper.
const PURPOSE: &[u8] = b"mfg/tenant/sealed-api-key-secret/v1";

/// Seals and opens key secrets.
pub struct Sealer {
    key: LessSafeKey,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(..)")
    }
}

/// Why a sealed secret did not open: it was sealed under another pepper, for another key, or
/// changed since.
#[derive(Debug, thiserror::Error)]
#[error("the sealed secret does not open with this server's pepper for key `{0}`")]
pub struct Unopenable(pub KeyId);

impl Sealer {
    /// A sealer whose key is derived from `pepper`.
    pub fn from_pepper(pepper: &[u8]) -> Self {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(pepper)
            .expect("HMAC accepts keys of any length");
        mac.update(PURPOSE);
        let derived = mac.finalize().into_bytes();
        let key = UnboundKey::new(&AES_256_GCM, &derived).expect("32 bytes make an AES-256 key");
        Self {
            key: LessSafeKey::new(key),
        }
    }

    /// Seals `secret`, the secret of key `key_id`: a random nonce, then the ciphertext and tag.
    pub fn seal(&self, key_id: KeyId, secret: &str) -> Result<Vec<u8>, getrandom::Error> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce)?;
        let mut sealed = secret.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(key_id.0.as_bytes()),
                &mut sealed,
            )
            .expect("a key secret is far shorter than AES-GCM's limit");
        let mut out = nonce.to_vec();
        out.append(&mut sealed);
        Ok(out)
    }

    /// Opens what [`Sealer::seal`] sealed for key `key_id`.
    pub fn open(&self, key_id: KeyId, sealed: &[u8]) -> Result<String, Unopenable> {
        let (nonce, ciphertext) = sealed
            .split_at_checked(NONCE_LEN)
            .ok_or(Unopenable(key_id))?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Unopenable(key_id))?;
        let mut buffer = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(key_id.0.as_bytes()), &mut buffer)
            .map_err(|_| Unopenable(key_id))?;
        String::from_utf8(plain.to_vec()).map_err(|_| Unopenable(key_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEPPER: &[u8] = b"a pepper of sixteen bytes or more";

    #[test]
    fn a_sealed_secret_opens_only_as_its_own_keys_under_the_same_pepper() {
        let sealer = Sealer::from_pepper(PEPPER);
        let key = KeyId::generate();
        let sealed = sealer.seal(key, "mfg_secret").unwrap();
        assert!(
            !sealed.windows(10).any(|w| w == b"mfg_secret"),
            "not in the clear"
        );
        assert_eq!(sealer.open(key, &sealed).unwrap(), "mfg_secret");
        assert_ne!(
            sealed,
            sealer.seal(key, "mfg_secret").unwrap(),
            "a nonce each time"
        );

        assert!(
            sealer.open(KeyId::generate(), &sealed).is_err(),
            "another key's"
        );
        let other = Sealer::from_pepper(b"another pepper of sixteen bytes");
        assert!(other.open(key, &sealed).is_err(), "another pepper");
        let mut changed = sealed.clone();
        *changed.last_mut().unwrap() ^= 1;
        assert!(sealer.open(key, &changed).is_err(), "changed");
        assert!(sealer.open(key, &sealed[..5]).is_err(), "cut short");
    }
}

//! Trusted devices (FORMAT.md §9.5). Each browser makes an ECDSA P-256 key pair with WebCrypto,
//! non-extractable, kept in its IndexedDB across sign-outs, and proves possession at sign-in by
//! signing a challenge the server issued. A sign-in from a key the account does not trust gets
//! no session until the browser is confirmed: by a one-time code sent out of band (e-mail, SMS)
//! or by an approval from a device the account already trusts. Enrollment trusts the enrolling
//! browser (its code came out of band already).
//!
//! A trusted device also decides which failure count a sign-in attempt belongs to: failures from
//! unknown devices never lock the account for its owner's devices (`throttle.rs`).

use std::collections::{BTreeSet, HashSet};
use std::sync::Mutex;

use data_encoding::BASE64URL_NOPAD;
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::model::{Device, EventKind, Id, User};
use super::{AccountError, Accounts, from_json, to_json};
use crate::clock::Millis;

/// What a device signs before the challenge bytes (FORMAT.md §9.5), then a zero byte.
pub const DEVICE_PROOF_LABEL: &[u8] = b"kluis/v1/device-proof";
/// How long a challenge can be answered, ms.
pub const CHALLENGE_LIFETIME_MS: Millis = 2 * 60 * 1000;
/// Bytes of a challenge: 16 random ‖ u64 expiry (ms) ‖ 16 of HMAC-SHA-256 over both.
pub const CHALLENGE_BYTES: usize = 40;
/// Bytes of an uncompressed SEC1 P-256 public key (0x04 ‖ x ‖ y).
pub const DEVICE_KEY_BYTES: usize = 65;
/// Bytes of an ECDSA P-256 signature as WebCrypto gives it (IEEE P1363: r ‖ s).
pub const DEVICE_SIGNATURE_BYTES: usize = 64;
/// Longest device name, in characters.
pub const MAX_DEVICE_NAME_CHARS: usize = 60;
/// Most trusted devices per account (the oldest unused must be removed before another).
pub const MAX_DEVICES: usize = 50;
/// Most answered challenges remembered at once (each for at most two minutes); when full, no
/// challenge is accepted until some expire. Sign-ins are throttled per address before a
/// challenge is looked at, so this is a bound, not a working limit.
pub const MAX_SPENT_CHALLENGES: usize = 1_000_000;

/// A device key whose possession was proven for this request.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceKey {
    raw: [u8; DEVICE_KEY_BYTES],
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceKey({})", self.id())
    }
}

impl DeviceKey {
    /// SHA-256 of the public key: the device's key in the `devices` tree.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.raw).into()
    }

    /// The public handle: the first 8 bytes of that hash, in hex.
    pub fn id(&self) -> String {
        hex::encode(self.hash().get(..8).unwrap_or_default())
    }

    /// The public key as stored: base64url without padding.
    pub fn text(&self) -> String {
        BASE64URL_NOPAD.encode(&self.raw)
    }
}

/// A browser's proof of its device key, as it arrives with a sign-in or an enrollment.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceProof {
    /// The public key: uncompressed SEC1, base64url without padding.
    pub public_key: String,
    /// A challenge from `POST /api/sign-in/challenge`.
    pub challenge: String,
    /// ECDSA P-256 with SHA-256 over `DEVICE_PROOF_LABEL ‖ 0x00 ‖ challenge bytes`, r ‖ s.
    pub signature: String,
}

/// Parses a public key strictly: 65 bytes, uncompressed, a point on the curve, and canonical
/// (it re-encodes to the same bytes).
pub fn parse_device_key(text: &str) -> Result<(DeviceKey, VerifyingKey), AccountError> {
    let bad = || AccountError::Invalid("the browser's device key is not a P-256 public key");
    let bytes = BASE64URL_NOPAD.decode(text.as_bytes()).map_err(|_| bad())?;
    let raw: [u8; DEVICE_KEY_BYTES] = bytes.as_slice().try_into().map_err(|_| bad())?;
    let key = VerifyingKey::from_sec1_bytes(&raw).map_err(|_| bad())?;
    if key.to_encoded_point(false).as_bytes() != raw.as_slice() {
        return Err(bad());
    }
    Ok((DeviceKey { raw }, key))
}

/// The bytes a device signs for a challenge.
pub fn signed_message(challenge: &[u8]) -> Vec<u8> {
    [DEVICE_PROOF_LABEL, &[0], challenge].concat()
}

/// Checks an ECDSA P-256/SHA-256 signature (IEEE P1363 form) by `key` over `message`.
pub fn verify_signature(key: &VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    let Ok(sig) = Signature::from_slice(signature) else { return false };
    key.verify(message, &sig).is_ok()
}

/// Challenges: stateless until answered (an HMAC under a key made at start-up, with the expiry
/// inside), so asking for them costs the server no memory; each is accepted once, remembered
/// until it expires.
pub(super) struct Challenges {
    key: [u8; 32],
    spent: Mutex<Spent>,
}

/// The nonces of answered challenges, with their expiry in order, so pruning touches only
/// what expired.
#[derive(Default)]
struct Spent {
    nonces: HashSet<[u8; 16]>,
    by_expiry: BTreeSet<(Millis, [u8; 16])>,
}

impl std::fmt::Debug for Challenges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Challenges(..)")
    }
}

impl Default for Challenges {
    fn default() -> Self {
        let mut key = [0u8; 32];
        // Without randomness no challenge verifies (the key stays zero and unguessable is
        // lost): refuse to run instead of issuing forgeable challenges.
        if getrandom::fill(&mut key).is_err() {
            tracing::error!("the system random generator failed: device challenges are refused");
        }
        Challenges { key, spent: Mutex::new(Spent::default()) }
    }
}

type HmacSha256 = Hmac<Sha256>;

impl Challenges {
    fn mac(&self, body: &[u8]) -> Option<[u8; 16]> {
        let mut m = <HmacSha256 as Mac>::new_from_slice(&self.key).ok()?;
        m.update(body);
        m.finalize().into_bytes().get(..16)?.try_into().ok()
    }

    /// A fresh challenge, base64url.
    pub(super) fn issue(&self, now: Millis) -> Result<String, AccountError> {
        if self.key == [0; 32] {
            return Err(AccountError::Internal("the system random generator failed"));
        }
        let nonce = super::secrets::random_id()?;
        let body = [&nonce[..], &now.saturating_add(CHALLENGE_LIFETIME_MS).to_be_bytes()].concat();
        let mac = self.mac(&body).ok_or(AccountError::Internal("the challenge MAC failed"))?;
        Ok(BASE64URL_NOPAD.encode(&[&body[..], &mac[..]].concat()))
    }

    /// The challenge's bytes if it is one of ours and unexpired (not yet spent).
    pub(super) fn check(&self, text: &str, now: Millis) -> Option<Vec<u8>> {
        let bytes = BASE64URL_NOPAD.decode(text.as_bytes()).ok()?;
        if bytes.len() != CHALLENGE_BYTES || self.key == [0; 32] {
            return None;
        }
        let (body, mac) = bytes.split_at(24);
        if !bool::from(self.mac(body)?.ct_eq(mac)) {
            return None;
        }
        let expires = u64::from_be_bytes(body.get(16..24)?.try_into().ok()?);
        (now < expires).then_some(bytes)
    }

    /// Spends a checked challenge: true the first time only.
    pub(super) fn spend(&self, checked: &[u8], now: Millis) -> bool {
        let (Some(nonce), Some(expires)) = (
            checked.get(..16).and_then(|n| <[u8; 16]>::try_from(n).ok()),
            checked.get(16..24).and_then(|e| <[u8; 8]>::try_from(e).ok()).map(u64::from_be_bytes),
        ) else {
            return false;
        };
        let mut spent = self.spent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Some(first) = spent.by_expiry.first().copied() {
            if first.0 > now {
                break;
            }
            spent.by_expiry.remove(&first);
            spent.nonces.remove(&first.1);
        }
        if spent.nonces.len() >= MAX_SPENT_CHALLENGES || !spent.nonces.insert(nonce) {
            return false;
        }
        spent.by_expiry.insert((expires, nonce));
        true
    }
}

fn device_tree_key(user: &Id, key_hash: &[u8; 32]) -> Vec<u8> {
    [&user.0[..], &key_hash[..]].concat()
}

/// A name for a device from its User-Agent, until the user gives it one.
pub fn default_device_name(user_agent: &str) -> String {
    super::agent::describe(user_agent)
}

impl Accounts {
    /// A challenge for a device to sign (`POST /api/sign-in/challenge`).
    pub fn device_challenge(&self) -> Result<String, AccountError> {
        self.challenges.issue(self.clock.now())
    }

    /// Checks a device proof: the challenge is ours and fresh, the signature by the presented
    /// key verifies, and only then is the challenge spent (once). Any failure is one clear
    /// error. Callers take the request's address bucket first.
    pub fn check_device_proof(&self, proof: &DeviceProof) -> Result<DeviceKey, AccountError> {
        let (key, verifying) = parse_device_key(&proof.public_key)?;
        let refused =
            || AccountError::Invalid("this browser's device proof did not check out: reload the page and try again");
        let now = self.clock.now();
        let challenge = self.challenges.check(&proof.challenge, now).ok_or_else(refused)?;
        let signature = BASE64URL_NOPAD.decode(proof.signature.as_bytes()).map_err(|_| refused())?;
        if signature.len() != DEVICE_SIGNATURE_BYTES
            || !verify_signature(&verifying, &signed_message(&challenge), &signature)
            || !self.challenges.spend(&challenge, now)
        {
            return Err(refused());
        }
        Ok(key)
    }

    /// The user's trusted device with this key, if any.
    pub fn trusted_device(&self, user: &Id, key: &DeviceKey) -> Result<Option<Device>, AccountError> {
        self.devices.get(device_tree_key(user, &key.hash()))?.map(|v| from_json(&v)).transpose()
    }

    /// Marks a trusted device as seen now.
    pub(super) fn touch_device(&self, user: &Id, key: &DeviceKey) -> Result<(), AccountError> {
        let now = self.clock.now();
        self.devices.update_and_fetch(device_tree_key(user, &key.hash()), |old| {
            let old = old?;
            let Ok(mut d) = from_json::<Device>(old) else { return Some(old.to_vec()) };
            d.last_seen_ms = now;
            to_json(&d).ok().or_else(|| Some(old.to_vec()))
        })?;
        Ok(())
    }

    /// Makes `key` a trusted device of `user`; records the event. Idempotent for a key the user
    /// trusts already.
    pub(super) fn trust_device(
        &self,
        user: &User,
        key: &DeviceKey,
        user_agent: &str,
        confirmed_by: &str,
    ) -> Result<Device, AccountError> {
        if let Some(d) = self.trusted_device(&user.id, key)? {
            return Ok(d);
        }
        if self.devices.scan_prefix(user.id.0).count() >= MAX_DEVICES {
            return Err(AccountError::Invalid(
                "this account trusts 50 browsers already: remove one under Account and security first",
            ));
        }
        let now = self.clock.now();
        let device = Device {
            id: key.id(),
            user: user.id,
            public_key: key.text(),
            name: default_device_name(user_agent),
            created_ms: now,
            last_seen_ms: now,
            confirmed_by: confirmed_by.to_owned(),
        };
        self.devices.insert(device_tree_key(&user.id, &key.hash()), to_json(&device)?)?;
        self.record_event(
            user.practice.as_ref(),
            &self.simple_event(EventKind::DeviceTrusted, user, confirmed_by, Some(&device.id)),
        )?;
        Ok(device)
    }

    /// The user's trusted devices, most recently seen first.
    pub fn devices_of(&self, user: &Id) -> Result<Vec<Device>, AccountError> {
        let mut out: Vec<Device> =
            self.devices.scan_prefix(user.0).values().map(|v| from_json(&v?)).collect::<Result<_, _>>()?;
        out.sort_by_key(|d| std::cmp::Reverse(d.last_seen_ms));
        Ok(out)
    }

    pub(super) fn device_entry(&self, user: &Id, id: &str) -> Result<(sled::IVec, Device), AccountError> {
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AccountError::NotFound);
        }
        for kv in self.devices.scan_prefix(user.0) {
            let (k, v) = kv?;
            let d: Device = from_json(&v)?;
            if d.id == id {
                return Ok((k, d));
            }
        }
        Err(AccountError::NotFound)
    }

    /// Renames one of the user's devices.
    pub async fn rename_device(&self, user: &Id, id: &str, name: &str) -> Result<Device, AccountError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_DEVICE_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(AccountError::Invalid("a device name has 1 to 60 characters"));
        }
        let (k, _) = self.device_entry(user, id)?;
        // Atomic: a device removed meanwhile stays removed.
        let updated = self.devices.update_and_fetch(k, |old| {
            let old = old?;
            let Ok(mut d) = from_json::<Device>(old) else { return Some(old.to_vec()) };
            d.name = name.to_owned();
            to_json(&d).ok().or_else(|| Some(old.to_vec()))
        })?;
        let d = from_json(&updated.ok_or(AccountError::NotFound)?)?;
        self.flush().await?;
        Ok(d)
    }

    /// Removes one of the user's trusted devices and ends the sessions opened on it; its next
    /// sign-in must be confirmed again.
    pub async fn revoke_device(&self, user: &User, id: &str, by: &str) -> Result<usize, AccountError> {
        let (k, d) = self.device_entry(&user.id, id)?;
        self.devices.remove(k)?;
        let ended = self.end_device_sessions(&user.id, &d.id)?;
        // Sign-ins under way on it, and the approvals it gave, end too.
        self.tickets.remove_device(&user.id, &d.id);
        self.record_event(user.practice.as_ref(), &self.simple_event(EventKind::DeviceRevoked, user, by, Some(&d.id)))?;
        self.flush().await?;
        Ok(ended)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn challenges_verify_once_and_expire() {
        let c = Challenges::default();
        let use_once = |t: &str, now| c.check(t, now).is_some_and(|b| c.spend(&b, now));
        let t = c.issue(1000).unwrap();
        assert!(use_once(&t, 1001));
        assert!(!use_once(&t, 1002), "a challenge answers once");
        let late = c.issue(1000).unwrap();
        assert!(!use_once(&late, 1000 + CHALLENGE_LIFETIME_MS), "expired");
        // Another server's challenge (another key), and any changed byte, are refused.
        let other = Challenges::default().issue(1000).unwrap();
        assert!(!use_once(&other, 1001));
        let fresh = c.issue(5000).unwrap();
        let mut bytes = BASE64URL_NOPAD.decode(fresh.as_bytes()).unwrap();
        for i in 0..bytes.len() {
            bytes[i] ^= 1;
            assert!(!use_once(&BASE64URL_NOPAD.encode(&bytes), 5001), "byte {i}");
            bytes[i] ^= 1;
        }
        assert!(use_once(&fresh, 5001));
        assert!(!use_once("short", 5001));
        // Spent nonces are forgotten once their challenges expired (and cannot be reused then).
        let again = c.issue(1_000_000).unwrap();
        assert!(use_once(&again, 1_000_001));
        assert_eq!(c.spent.lock().unwrap().nonces.len(), 1, "the expired ones were pruned");
    }

    #[test]
    fn device_keys_are_strict() {
        let secret = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let point = secret.verifying_key().to_encoded_point(false);
        let text = BASE64URL_NOPAD.encode(point.as_bytes());
        let (key, _) = parse_device_key(&text).unwrap();
        assert_eq!(key.text(), text);
        assert_eq!(key.id().len(), 16);
        // Compressed form, a point off the curve, padding, and a wrong length are refused.
        let compressed = BASE64URL_NOPAD.encode(secret.verifying_key().to_encoded_point(true).as_bytes());
        assert!(parse_device_key(&compressed).is_err());
        let mut off = point.as_bytes().to_vec();
        off[64] ^= 1;
        assert!(parse_device_key(&BASE64URL_NOPAD.encode(&off)).is_err());
        assert!(parse_device_key(&format!("{text}=")).is_err());
        assert!(parse_device_key(&BASE64URL_NOPAD.encode(&point.as_bytes()[..64])).is_err());
    }
}

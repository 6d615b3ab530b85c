//! HMAC-SHA256 (RFC 2104) over a list of parts, and its constant-time check.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::secret::SymmetricKey;
use crate::spec::HASH_BYTES;

/// A keyed HMAC-SHA256 state, fed part by part.
pub(crate) struct Hmac256(Hmac<Sha256>);

impl Hmac256 {
    pub(crate) fn new(key: &SymmetricKey) -> Self {
        #[allow(clippy::expect_used)]
        let mac =
            <Hmac<Sha256> as Mac>::new_from_slice(key.expose()).expect("infallible: HMAC takes keys of any length");
        Hmac256(mac)
    }

    pub(crate) fn update(&mut self, part: &[u8]) -> &mut Self {
        self.0.update(part);
        self
    }

    pub(crate) fn finish(self) -> [u8; HASH_BYTES] {
        self.0.finalize().into_bytes().into()
    }
}

/// HMAC-SHA256 of the concatenation of `parts`.
pub(crate) fn hmac(key: &SymmetricKey, parts: &[&[u8]]) -> [u8; HASH_BYTES] {
    let mut m = Hmac256::new(key);
    for p in parts {
        m.update(p);
    }
    m.finish()
}

/// Constant-time equality of two MACs.
pub(crate) fn mac_eq(a: &[u8; HASH_BYTES], b: &[u8; HASH_BYTES]) -> bool {
    a.ct_eq(b).into()
}

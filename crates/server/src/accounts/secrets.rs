//! The server's own random secrets: session tokens, link tokens, enrollment and one-time codes.
//!
//! All come from the operating system's CSPRNG. Only their SHA-256 is stored, under a label per
//! kind (so a leaked database holds nothing that signs anyone in), and they are compared by
//! looking that hash up, never by comparing the secrets themselves. They zeroize on drop and
//! their `Debug` prints nothing of them.

use data_encoding::{BASE64URL_NOPAD, Encoding};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::AccountError;

/// Bytes of a session or link token: 128 bits (ASVS 7.2.3).
pub const TOKEN_BYTES: usize = 16;
/// Characters of an enrollment or invitation code: 20 base32 characters, 100 bits.
pub const CODE_CHARS: usize = 20;
/// Characters per group when a code is shown.
pub const CODE_GROUP: usize = 4;
/// Digits of a one-time code that confirms a new browser (short enough to type from an SMS;
/// guessing is bounded by the tries a sign-in ticket allows).
pub const DEVICE_CODE_DIGITS: usize = 6;

/// Crockford's base32 alphabet: no I, L, O or U, so a code read aloud or retyped is unambiguous.
fn code_alphabet() -> Encoding {
    let mut spec = data_encoding::Specification::new();
    spec.symbols.push_str("0123456789ABCDEFGHJKMNPQRSTVWXYZ");
    // The alphabet is a constant that `Specification` accepts; a failure would be a build bug,
    // so fall back to the RFC 4648 alphabet rather than panicking.
    spec.encoding().unwrap_or(data_encoding::BASE32_NOPAD)
}

/// What a stored hash is the hash of (its label keeps the kinds apart).
#[derive(Debug, Clone, Copy)]
pub enum SecretKind {
    /// A session cookie.
    Session,
    /// An enrollment or invitation code.
    Code,
    /// A second-factor recovery code (the same form as a code).
    Recovery,
    /// The ticket of a sign-in waiting for its second factor (the same form as a token).
    Ticket,
    /// The token of a "this was not me" link (the same form as a token).
    NotMe,
    /// The token of a password reset link (the same form as a token).
    Reset,
    /// The one-time code that confirms a new browser (six digits).
    DeviceCode,
    /// The token of an unsubscribe link (the same form as a token).
    Unsubscribe,
    /// A temporary access code for support (the same form as a code).
    SupportCode,
}

impl SecretKind {
    fn label(self) -> &'static [u8] {
        match self {
            SecretKind::Session => b"kluis/v1/server/session",
            SecretKind::Code => b"kluis/v1/server/code",
            SecretKind::Recovery => b"kluis/v1/server/recovery-code",
            SecretKind::Ticket => b"kluis/v1/server/sign-in-ticket",
            SecretKind::NotMe => b"kluis/v1/server/not-me",
            SecretKind::Reset => b"kluis/v1/server/password-reset",
            SecretKind::DeviceCode => b"kluis/v1/server/device-code",
            SecretKind::Unsubscribe => b"kluis/v1/server/unsubscribe",
            SecretKind::SupportCode => b"kluis/v1/server/support-code",
        }
    }
}

/// A random secret shown once (a cookie value or a code).
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

fn random<const N: usize>() -> Result<[u8; N], AccountError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|_| AccountError::Internal("the system random generator failed"))?;
    Ok(b)
}

/// A uniform number from 10 to 99, as text (what a new browser shows for its approver to type).
pub fn two_digit_number() -> Result<String, AccountError> {
    loop {
        let [b] = random::<1>()?;
        if b < 180 {
            return Ok((10 + b % 90).to_string());
        }
    }
}

/// 16 random bytes for ids.
pub fn random_id() -> Result<[u8; 16], AccountError> {
    random()
}

impl Secret {
    /// A fresh 128-bit token, base64url without padding (22 characters).
    pub fn token() -> Result<Self, AccountError> {
        let mut b = random::<TOKEN_BYTES>()?;
        let s = BASE64URL_NOPAD.encode(&b);
        b.zeroize();
        Ok(Secret(s))
    }

    /// A fresh 100-bit code, in groups: `ABCD-EFGH-JKMN-PQRS-TVWX`.
    pub fn code() -> Result<Self, AccountError> {
        let mut b = random::<{ CODE_CHARS * 5 / 8 }>()?;
        let plain = code_alphabet().encode(&b);
        b.zeroize();
        let groups: Vec<String> =
            plain.as_bytes().chunks(CODE_GROUP).map(|g| String::from_utf8_lossy(g).into_owned()).collect();
        Ok(Secret(groups.join("-")))
    }

    /// A fresh one-time code of [`DEVICE_CODE_DIGITS`] decimal digits, uniform (rejection
    /// sampling, so no digit string is likelier than another).
    pub fn digits() -> Result<Self, AccountError> {
        const RANGE: u32 = 1_000_000;
        const LIMIT: u32 = u32::MAX - u32::MAX % RANGE;
        loop {
            let n = u32::from_be_bytes(random::<4>()?);
            if n < LIMIT {
                return Ok(Secret(format!("{:06}", n % RANGE)));
            }
        }
    }

    /// The secret as shown to its holder.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The value stored for it.
    pub fn hash(&self, kind: SecretKind) -> [u8; 32] {
        hash_presented(kind, &self.0).unwrap_or([0; 32])
    }
}

/// The stored hash of a secret as presented, or `None` when it cannot be one (wrong shape).
/// Codes are compared without their grouping and case, so `abcd efgh…` is accepted.
pub fn hash_presented(kind: SecretKind, presented: &str) -> Option<[u8; 32]> {
    let canonical = match kind {
        SecretKind::Session | SecretKind::Ticket | SecretKind::NotMe | SecretKind::Reset | SecretKind::Unsubscribe => {
            let bytes = BASE64URL_NOPAD.decode(presented.as_bytes()).ok()?;
            if bytes.len() != TOKEN_BYTES {
                return None;
            }
            presented.to_owned()
        }
        SecretKind::Code | SecretKind::Recovery | SecretKind::SupportCode => {
            let mut c: String =
                presented.chars().filter(|c| !matches!(c, '-' | ' ')).map(|c| c.to_ascii_uppercase()).collect();
            // Crockford's decoding of look-alikes.
            c = c.replace(['I', 'L'], "1").replace('O', "0");
            if c.len() != CODE_CHARS || code_alphabet().decode(c.as_bytes()).is_err() {
                return None;
            }
            c
        }
        SecretKind::DeviceCode => {
            let c: String = presented.chars().filter(|c| !matches!(c, '-' | ' ')).collect();
            if c.len() != DEVICE_CODE_DIGITS || !c.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            c
        }
    };
    let mut h = Sha256::new();
    h.update(kind.label());
    h.update([0]);
    h.update(canonical.as_bytes());
    Some(h.finalize().into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn codes_are_typo_tolerant_in_form_only() {
        let c = Secret::code().unwrap();
        assert_eq!(c.expose().len(), CODE_CHARS + CODE_CHARS / CODE_GROUP - 1);
        let h = c.hash(SecretKind::Code);
        let retyped = c.expose().to_lowercase().replace('-', " ");
        assert_eq!(hash_presented(SecretKind::Code, &retyped), Some(h));
        // A different kind never matches, and a changed character is another code.
        assert_ne!(hash_presented(SecretKind::Session, c.expose()), Some(h));
        let mut other = c.expose().to_owned();
        let last = if other.ends_with('0') { "1" } else { "0" };
        other.replace_range(other.len() - 1.., last);
        assert_ne!(hash_presented(SecretKind::Code, &other), Some(h));
        assert_eq!(hash_presented(SecretKind::Code, "ABCD"), None);
    }

    #[test]
    fn tokens_are_128_bits_and_differ() {
        let a = Secret::token().unwrap();
        let b = Secret::token().unwrap();
        assert_eq!(a.expose().len(), 22);
        assert_ne!(a.expose(), b.expose());
        assert!(hash_presented(SecretKind::Session, a.expose()).is_some());
        assert!(hash_presented(SecretKind::Session, "not a token").is_none());
        assert_eq!(format!("{a:?}"), "Secret(..)");
    }

    #[test]
    fn device_codes_are_six_digits_and_spread_over_every_digit() {
        let mut seen = [0u32; 10];
        for _ in 0..200 {
            let c = Secret::digits().unwrap();
            assert_eq!(c.expose().len(), DEVICE_CODE_DIGITS);
            assert!(hash_presented(SecretKind::DeviceCode, c.expose()).is_some());
            for b in c.expose().bytes() {
                seen[usize::from(b - b'0')] += 1;
            }
        }
        assert!(seen.iter().all(|n| *n > 60), "{seen:?}");
        assert_eq!(hash_presented(SecretKind::DeviceCode, "12345"), None);
        assert_eq!(hash_presented(SecretKind::DeviceCode, "12345a"), None);
        assert_eq!(hash_presented(SecretKind::DeviceCode, "123 456"), hash_presented(SecretKind::DeviceCode, "123456"));
    }
}

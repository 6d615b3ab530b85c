//! Passwords (NIST SP 800-63B-4 §3.1.1.2, security-anchors §2.1–2.2): the policy, and Argon2id
//! hashing in a blocking pool behind a semaphore.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{Error as PhcError, SaltString};
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use tokio::sync::Semaphore;
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use super::AccountError;

/// Shortest password without a second factor (NIST SP 800-63B-4 §3.1.1.2).
pub const MIN_CHARS_SINGLE_FACTOR: usize = 15;
/// Shortest password when a second factor is required (ibid.).
pub const MIN_CHARS_WITH_SECOND_FACTOR: usize = 8;
/// Longest password accepted, in code points (NIST: allow at least 64).
pub const MAX_CHARS: usize = 256;
/// Highest minimum a practice may set.
pub const MAX_POLICY_MIN_CHARS: usize = 64;
/// zxcvbn's estimate, as log10 of guesses, below which a password counts as common: it is in
/// zxcvbn's lists of breached passwords (the top of the 10-million-password Xato corpus), a
/// dictionary word or name, a keyboard pattern, a repetition or a sequence, or made of the
/// context words (the username, the practice, "kluis"), alone or in easy combinations. An
/// online attacker under our throttling gets far fewer than 10^7 guesses.
pub const MIN_GUESSES_LOG10: f64 = 7.0;

/// Argon2id memory for the sign-in hash, KiB. Chosen by measuring on the 2-core target
/// (`cargo bench -p kluis-server --bench password`; figures in the README): 64 MiB, t=3, p=1
/// takes about a tenth of a second, well above OWASP's floor of 19 MiB, t=2.
pub const ARGON2_M_KIB: u32 = 64 * 1024;
/// Argon2id passes.
pub const ARGON2_T: u32 = 3;
/// Argon2id lanes.
pub const ARGON2_P: u32 = 1;
/// The floor below which a stored hash is always rehashed (security-anchors §2.1).
pub const FLOOR_M_KIB: u32 = 19 * 1024;
/// The floor's passes.
pub const FLOOR_T: u32 = 2;
/// How long a sign-in may wait for a hashing slot before the server answers "busy".
pub const HASH_QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

/// Argon2 parameters of the sign-in hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    /// Memory, KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl HashParams {
    /// The parameters new hashes use.
    pub const CURRENT: HashParams = HashParams { m_kib: ARGON2_M_KIB, t: ARGON2_T, p: ARGON2_P };
}

/// A password as typed, NFKC-normalised (NIST SP 800-63B-4 recommends normalising so the same
/// password typed on another system matches). Zeroized on drop; `Debug` prints nothing.
pub struct Password(Zeroizing<String>);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

impl Password {
    /// Takes a password as typed. Every character counts; nothing is trimmed or case-folded.
    pub fn new(typed: &str) -> Self {
        Password(Zeroizing::new(typed.nfkc().collect()))
    }

    fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Checks a new password: length (in code points) and the common-password check against the
    /// context words. Says why it is refused, never how to compose one.
    pub fn check_new(&self, min_chars: usize, context: &[&str]) -> Result<(), AccountError> {
        let n = self.0.chars().count();
        if n < min_chars {
            return Err(AccountError::WeakPassword(format!(
                "use at least {min_chars} characters (a few words work well)"
            )));
        }
        if n > MAX_CHARS {
            return Err(AccountError::WeakPassword(format!("use at most {MAX_CHARS} characters")));
        }
        let mut words: Vec<&str> = context.to_vec();
        words.push("kluis");
        let estimate = zxcvbn::zxcvbn(&self.0, &words);
        if estimate.guesses_log10() < MIN_GUESSES_LOG10 {
            let why = estimate
                .feedback()
                .and_then(|f| f.warning())
                .map_or_else(|| "this password is too common or too easy to guess".to_owned(), |w| w.to_string());
            return Err(AccountError::WeakPassword(format!("{why}; choose another")));
        }
        Ok(())
    }
}

/// The minimum length for a practice: NIST's by whether a second factor is required, raised to
/// the practice's own minimum.
pub fn min_chars(second_factor_required: bool, practice_min: u32) -> usize {
    let nist = if second_factor_required { MIN_CHARS_WITH_SECOND_FACTOR } else { MIN_CHARS_SINGLE_FACTOR };
    nist.max(usize::try_from(practice_min).unwrap_or(MAX_POLICY_MIN_CHARS).min(MAX_POLICY_MIN_CHARS))
}

/// Argon2id hashing, at most `slots` at once (each takes `m_kib` of memory).
#[derive(Debug, Clone)]
pub struct Hasher {
    params: HashParams,
    slots: Arc<Semaphore>,
}

/// What verifying a password found.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    /// Wrong password.
    No,
    /// Right password.
    Yes,
    /// Right password, and here is a new hash with the current parameters to store.
    YesRehashed(String),
}

fn argon2(p: HashParams) -> Result<Argon2<'static>, AccountError> {
    let params = Params::new(p.m_kib, p.t, p.p, None).map_err(|_| AccountError::Internal("bad Argon2 parameters"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn hash_blocking(params: HashParams, password: &Password) -> Result<String, AccountError> {
    let salt = super::secrets::random_id()?;
    let salt = SaltString::encode_b64(&salt).map_err(|_| AccountError::Internal("salt encoding failed"))?;
    let hash = argon2(params)?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|_| AccountError::Internal("password hashing failed"))?;
    Ok(hash.to_string())
}

/// The parameters of a stored PHC string, if it is an Argon2id one.
pub fn params_of(phc: &str) -> Option<HashParams> {
    let parsed = PasswordHash::new(phc).ok()?;
    if parsed.algorithm.as_str() != "argon2id" {
        return None;
    }
    let p = Params::try_from(&parsed).ok()?;
    Some(HashParams { m_kib: p.m_cost(), t: p.t_cost(), p: p.p_cost() })
}

fn verify_blocking(current: HashParams, password: &Password, phc: &str) -> Result<Verified, AccountError> {
    let parsed = PasswordHash::new(phc).map_err(|_| AccountError::Internal("a stored password hash is unreadable"))?;
    let stored = params_of(phc).ok_or(AccountError::Internal("a stored password hash is not Argon2id"))?;
    // Verify with the stored parameters (clamped by the floor and ceiling of a real hash).
    if stored.m_kib > 4 * 1024 * 1024 || stored.t > 64 || stored.p > 16 {
        return Err(AccountError::Internal("a stored password hash has out-of-range parameters"));
    }
    match argon2(stored)?.verify_password(password.as_bytes(), &parsed) {
        Ok(()) => {}
        Err(PhcError::Password) => return Ok(Verified::No),
        Err(_) => return Err(AccountError::Internal("a stored password hash is unreadable")),
    }
    let weaker = stored.m_kib < current.m_kib || stored.t < current.t;
    if weaker { Ok(Verified::YesRehashed(hash_blocking(current, password)?)) } else { Ok(Verified::Yes) }
}

impl Hasher {
    /// A hasher with `params`, running at most `slots` hashes at once.
    pub fn new(params: HashParams, slots: usize) -> Self {
        Hasher { params, slots: Arc::new(Semaphore::new(slots.max(1))) }
    }

    /// The parameters new hashes use.
    pub fn params(&self) -> HashParams {
        self.params
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(HashParams) -> Result<T, AccountError> + Send + 'static,
    ) -> Result<T, AccountError> {
        let permit = tokio::time::timeout(HASH_QUEUE_TIMEOUT, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| AccountError::Busy)?
            .map_err(|_| AccountError::Busy)?;
        let params = self.params;
        tokio::task::spawn_blocking(move || {
            let out = job(params);
            drop(permit);
            out
        })
        .await
        .map_err(|_| AccountError::Internal("hashing task failed"))?
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: Password) -> Result<String, AccountError> {
        self.run(move |p| hash_blocking(p, &password)).await
    }

    /// Verifies a password against a stored hash, rehashing when the parameters have risen.
    /// With no stored hash (no such user, or not enrolled), a dummy hash of the same cost is
    /// computed, so the time taken does not tell whether the username exists.
    pub async fn verify(&self, password: Password, phc: Option<String>) -> Result<Verified, AccountError> {
        self.run(move |p| match phc {
            Some(phc) => verify_blocking(p, &password, &phc),
            None => hash_blocking(p, &password).map(|_| Verified::No),
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn length_counts_code_points_and_nothing_is_composed() {
        // 15 characters of 2-byte letters: accepted without any digit, capital or symbol.
        assert!(Password::new("ééé lentewind zomer").check_new(15, &[]).is_ok());
        assert!(Password::new("kort maar fijn").check_new(15, &[]).is_err());
        assert!(Password::new("kort maar fijn!").check_new(15, &[]).is_ok());
        assert!(Password::new(&"wolk ".repeat(60)).check_new(15, &[]).is_err(), "over 256 characters");
        assert!(Password::new(&"wolk ".repeat(4)).check_new(15, &[]).is_err(), "repetitive");
    }

    #[test]
    fn common_breached_and_context_passwords_are_refused() {
        for weak in ["password1234567", "qwertyuiopasdfgh", "123456789012345", "iloveyou1234567", "passwordpassword"] {
            assert!(Password::new(weak).check_new(8, &[]).is_err(), "{weak}");
        }
        assert!(Password::new("anna.devries1987").check_new(8, &["anna.devries"]).is_err());
        assert!(Password::new("praktijkdevries").check_new(8, &["praktijk", "devries"]).is_err());
        assert!(Password::new("kluiskluiskluis1").check_new(8, &[]).is_err());
    }

    #[test]
    fn minimum_follows_nist_and_the_practice() {
        assert_eq!(min_chars(false, 0), 15);
        assert_eq!(min_chars(true, 0), 8);
        assert_eq!(min_chars(true, 12), 12);
        assert_eq!(min_chars(false, 1000), 64);
    }

    #[test]
    fn normalisation_makes_composed_and_decomposed_equal() {
        assert_eq!(Password::new("caf\u{e9}").as_bytes(), Password::new("cafe\u{301}").as_bytes());
        assert_eq!(format!("{:?}", Password::new("geheim")), "Password(..)");
    }

    #[tokio::test]
    async fn hashes_verify_and_rehash_when_parameters_rise() {
        let weak = HashParams { m_kib: FLOOR_M_KIB, t: FLOOR_T, p: 1 };
        let old = Hasher::new(weak, 2).hash(Password::new("ochtendmist over de polder")).await.unwrap();
        assert_eq!(params_of(&old), Some(weak));
        assert!(old.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let h = Hasher::new(HashParams::CURRENT, 2);
        assert_eq!(
            h.verify(Password::new("ochtendmist over de polder!"), Some(old.clone())).await.unwrap(),
            Verified::No
        );
        let Verified::YesRehashed(new) =
            h.verify(Password::new("ochtendmist over de polder"), Some(old)).await.unwrap()
        else {
            panic!("not rehashed")
        };
        assert_eq!(params_of(&new), Some(HashParams::CURRENT));
        assert_eq!(h.verify(Password::new("ochtendmist over de polder"), Some(new)).await.unwrap(), Verified::Yes);
        assert_eq!(h.verify(Password::new("x"), None).await.unwrap(), Verified::No);
    }
}

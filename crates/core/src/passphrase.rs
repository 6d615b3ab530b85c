//! Passphrases for protecting a key file (FORMAT.md §6.3).
//!
//! Strength estimation (zxcvbn) reads a clock, so it is not done here: the caller injects a
//! [`StrengthEstimator`], as it injects an RNG. A [`StrongPassphrase`] can only be made by
//! passing an estimator's verdict, so no key file is protected with a weak one.

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::spec::{MIN_PASSPHRASE_CHARS, MIN_PASSPHRASE_SCORE};

/// A passphrase, zeroized on drop, never printed.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps a passphrase, normalised to Unicode NFC (FORMAT.md §6.3) so that the same
    /// passphrase typed on another system derives the same key. The input is wiped.
    pub fn new(s: String) -> Self {
        use unicode_normalization::UnicodeNormalization;
        let s = Zeroizing::new(s);
        // NFC expands a string at most threefold (UAX #15), so this never reallocates and
        // leaves no unwiped partial copy behind.
        let mut out = Zeroizing::new(String::with_capacity(s.len() * 3));
        out.extend(s.nfc());
        Passphrase(out)
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The passphrase text (for a strength estimator).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl core::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// An estimator's verdict on a passphrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Strength {
    /// 0 (guessable in seconds) to 4 (very unguessable), zxcvbn's scale.
    pub score: u8,
    /// Advice for the user, when the score is low.
    pub feedback: String,
}

/// Estimates how hard a passphrase is to guess.
pub trait StrengthEstimator {
    /// Rates `passphrase`; `context` holds words the attacker may know (label, user name).
    fn estimate(&self, passphrase: &str, context: &[&str]) -> Strength;
}

/// A passphrase that an estimator rated strong enough to protect a key file.
#[derive(Clone, Debug)]
pub struct StrongPassphrase(Passphrase);

impl StrongPassphrase {
    /// Accepts `passphrase` if it has at least 12 characters and `estimator` scores it at
    /// least 3 of 4 (FORMAT.md §6.3); otherwise [`Error::WeakPassphrase`] with the reason.
    pub fn assess(passphrase: Passphrase, estimator: &impl StrengthEstimator, context: &[&str]) -> Result<Self> {
        if passphrase.expose().chars().count() < MIN_PASSPHRASE_CHARS {
            return Err(Error::WeakPassphrase(format!("use at least {MIN_PASSPHRASE_CHARS} characters")));
        }
        let s = estimator.estimate(passphrase.expose(), context);
        if s.score < MIN_PASSPHRASE_SCORE {
            let advice = if s.feedback.is_empty() {
                "add more words that are not a common phrase".to_owned()
            } else {
                s.feedback
            };
            return Err(Error::WeakPassphrase(advice));
        }
        Ok(StrongPassphrase(passphrase))
    }

    /// The passphrase (for a second layer such as an age backup).
    pub fn passphrase(&self) -> &Passphrase {
        &self.0
    }
}

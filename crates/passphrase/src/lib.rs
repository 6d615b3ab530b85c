//! Passphrase strength estimation for kluis, with Dropbox's zxcvbn.
//!
//! kluis-core reads no clock, and zxcvbn does (to time itself), so the estimator lives here and
//! is injected into [`kluis_core::StrongPassphrase::assess`].
#![warn(missing_docs)]

use kluis_core::passphrase::{Strength, StrengthEstimator};

/// zxcvbn as a [`StrengthEstimator`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Zxcvbn;

impl StrengthEstimator for Zxcvbn {
    fn estimate(&self, passphrase: &str, context: &[&str]) -> Strength {
        let entropy = zxcvbn::zxcvbn(passphrase, context);
        let feedback = entropy
            .feedback()
            .map(|f| {
                let mut parts: Vec<String> = f.warning().map(|w| w.to_string()).into_iter().collect();
                parts.extend(f.suggestions().iter().map(|s| s.to_string()));
                parts.join(" ")
            })
            .unwrap_or_default();
        Strength { score: u8::from(entropy.score()), feedback }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use kluis_core::{Error, Passphrase, StrongPassphrase};

    #[test]
    fn common_and_short_passphrases_are_refused_with_a_reason() {
        for weak in [
            "password",
            "password1234",
            "correcthorse",
            "qwertyuiopasdf",
            "Jansen",
            "passwordpassword",
            "jansenjansen1",
        ] {
            let result = StrongPassphrase::assess(Passphrase::new(weak.into()), &Zxcvbn, &["Jansen"]);
            assert!(matches!(result, Err(Error::WeakPassphrase(ref why)) if !why.is_empty()), "{weak} was not refused");
        }
    }

    #[test]
    fn a_long_unusual_passphrase_is_accepted() {
        StrongPassphrase::assess(Passphrase::new("otter quilt harbour ninety vivid".into()), &Zxcvbn, &[]).unwrap();
    }
}

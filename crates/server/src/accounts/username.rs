//! Usernames: unique regardless of case and Unicode form.
//!
//! The comparison key is NFKC, then full Unicode lower case, then NFKC again (so "Anna",
//! "ANNA" and "Ａｎｎａ" are one user). What the user typed (in NFC) is kept for display. Only
//! letters, digits and `.`, `-`, `_`, `@` are allowed, so a name cannot hide in look-alike
//! spaces or control characters.

use unicode_normalization::UnicodeNormalization;

use super::AccountError;

/// Longest username, in Unicode code points.
pub const MAX_USERNAME_CHARS: usize = 64;

/// A checked username: the display form and the comparison key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username {
    display: String,
    key: String,
}

impl Username {
    /// Checks a username as typed.
    pub fn parse(typed: &str) -> Result<Self, AccountError> {
        let display: String = typed.nfc().collect();
        let n = display.chars().count();
        if n == 0 || n > MAX_USERNAME_CHARS {
            return Err(AccountError::Invalid("a username has 1 to 64 characters"));
        }
        if !display.chars().all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '@')) {
            return Err(AccountError::Invalid("a username has only letters, digits and . - _ @"));
        }
        Ok(Username { key: key_of(&display), display })
    }

    /// The form shown to people.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// The comparison key (what is unique).
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// The comparison key of any string (also used for practice names).
pub fn key_of(s: &str) -> String {
    let folded: String = s.nfkc().collect::<String>().to_lowercase();
    folded.nfkc().collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn case_and_width_variants_are_one_user() {
        let a = Username::parse("Anna").unwrap();
        for v in ["anna", "ANNA", "Ａｎｎａ", "aNNa"] {
            assert_eq!(Username::parse(v).unwrap().key(), a.key(), "{v}");
        }
        assert_eq!(a.display(), "Anna");
        // Composed and decomposed forms are the same name.
        assert_eq!(Username::parse("Ren\u{e9}e").unwrap().key(), Username::parse("Rene\u{301}e").unwrap().key());
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in ["", "anna devries", "anna\u{200b}", "a/b", "a\nb", &"x".repeat(65)] {
            assert!(Username::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Username::parse(&"é".repeat(64)).is_ok());
    }
}

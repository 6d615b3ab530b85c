//! Public-key fingerprints (FORMAT.md §2.4): 160 bits of SHA-256, shown as 8 groups of 4
//! RFC 4648 base32 characters (`A`–`Z`, `2`–`7`: no `0`/`O` or `1`/`I` to confuse when read
//! aloud), accepted back in any case, with or without spaces, tabs or dashes.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::secret::PublicKey;
use crate::spec::{FINGERPRINT_BYTES, FINGERPRINT_GROUP, LABEL_FINGERPRINT};

/// A public key's fingerprint.
#[derive(Clone, Copy, Eq)]
pub struct Fingerprint([u8; FINGERPRINT_BYTES]);

impl PartialEq for Fingerprint {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Fingerprint {
    /// The fingerprint of `pk`.
    pub fn of(pk: &PublicKey) -> Self {
        let digest = Sha256::new().chain_update(LABEL_FINGERPRINT).chain_update(pk.0).finalize();
        let mut out = [0; FINGERPRINT_BYTES];
        out.iter_mut().zip(digest.iter()).for_each(|(o, d)| *o = *d);
        Fingerprint(out)
    }

    /// Parses a fingerprint typed by a person: any case; spaces, tabs and dashes ignored.
    pub fn parse(s: &str) -> Result<Self> {
        let cleaned: String =
            s.chars().filter(|c| !matches!(c, ' ' | '-' | '\t')).map(|c| c.to_ascii_uppercase()).collect();
        if cleaned.len() != 32 {
            return Err(Error::BadFingerprint("expected 32 characters (A-Z, 2-7) besides spaces and dashes"));
        }
        let bytes = data_encoding::BASE32_NOPAD
            .decode(cleaned.as_bytes())
            .map_err(|_| Error::BadFingerprint("only the letters A-Z and digits 2-7 may appear"))?;
        let arr =
            <[u8; FINGERPRINT_BYTES]>::try_from(bytes.as_slice()).map_err(|_| Error::BadFingerprint("wrong length"))?;
        Ok(Fingerprint(arr))
    }

    /// The compact form: 32 characters, no separators.
    pub fn compact(&self) -> String {
        data_encoding::BASE32_NOPAD.encode(&self.0)
    }
}

impl core::fmt::Display for Fingerprint {
    /// Groups of four separated by dashes: `ABCD-EFGH-...`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let compact = self.compact();
        for (i, chunk) in compact.as_bytes().chunks(FINGERPRINT_GROUP).enumerate() {
            if i > 0 {
                f.write_str("-")?;
            }
            f.write_str(core::str::from_utf8(chunk).map_err(|_| core::fmt::Error)?)?;
        }
        Ok(())
    }
}

impl core::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl core::str::FromStr for Fingerprint {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Fingerprint::parse(s)
    }
}

//! The browser binding of kluis-core.
//!
//! This crate contains no logic: it converts between JavaScript values and kluis-core types and
//! hands out opaque handles. The vault secret and the keys derived from it stay in wasm memory,
//! zeroized on drop (and so on lock, when the app frees the handle); no function returns them to
//! JavaScript. Bulk decryption goes through WebCrypto ([`webcrypto`]), one non-extractable
//! per-record key at a time.
#![warn(missing_docs)]

pub mod bench;
pub mod keygen;
pub mod session;
pub mod webcrypto;

use wasm_bindgen::prelude::*;

/// Installs a panic hook that reports Rust panics on the browser console in readable form
/// (instead of "unreachable executed"). Called once when the module starts.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen(start)]
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        web_sys::console::error_1(&JsValue::from_str(&format!("kluis: internal error: {info}")));
    }));
}

fn js_error(e: &kluis_core::Error) -> JsError {
    JsError::new(&e.to_string())
}

/// A key file opened in wasm memory. JavaScript holds only this handle.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Vault {
    unlocked: kluis_core::UnlockedKeyFile,
    // Used by the WebCrypto route, which exists on wasm32 only.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    keys: kluis_core::KeyHierarchy,
}

#[wasm_bindgen]
impl Vault {
    /// Opens a key file read from disk. `passphrase` is required for a protected file.
    /// `key_file` is overwritten with zeros before this returns (in the caller's own buffer
    /// too: wasm-bindgen copies a mutable slice back), whether or not it opened.
    pub fn unlock(key_file: &mut [u8], passphrase: Option<String>) -> Result<Vault, JsError> {
        let result = Self::unlock_inner(key_file, passphrase);
        key_file.fill(0);
        result
    }

    fn unlock_inner(key_file: &[u8], passphrase: Option<String>) -> Result<Vault, JsError> {
        let file = kluis_core::KeyFile::parse(key_file).map_err(|e| js_error(&e))?;
        let pass = passphrase.map(kluis_core::Passphrase::new);
        let unlocked = file.unlock(pass.as_ref()).map_err(|e| js_error(&e))?;
        if unlocked.info().kind != kluis_core::keyfile::KeyFileKind::Vault {
            return Err(JsError::new("this is the practice's break-glass key, not a practitioner's key file"));
        }
        let keys = kluis_core::KeyHierarchy::derive(unlocked.secret());
        Ok(Vault { unlocked, keys })
    }

    /// The public fingerprint, in groups, for the user to compare.
    #[wasm_bindgen(getter)]
    pub fn fingerprint(&self) -> String {
        self.unlocked.info().public.fingerprint().to_string()
    }

    /// The key file's label.
    #[wasm_bindgen(getter)]
    pub fn label(&self) -> String {
        self.unlocked.info().label.clone()
    }

    /// The public key as the key file writes it (`kluispub1…`), which the app registers with
    /// the server and compares on later unlocks.
    #[wasm_bindgen(getter)]
    pub fn public_key(&self) -> Result<String, JsError> {
        self.unlocked.info().public_key_text().map_err(|e| js_error(&e))
    }

    /// The fingerprint of the practice's break-glass key this key file escrows to, if any.
    #[wasm_bindgen(getter)]
    pub fn break_glass_fingerprint(&self) -> Option<String> {
        self.unlocked.info().break_glass.map(|k| k.fingerprint().to_string())
    }

    /// A session on the notes vault (`"notes"`) or the identities vault (`"identities"`): its
    /// keys stay in wasm memory, and are wiped when the session or this handle is freed.
    pub fn session(&self, which: &str) -> Result<session::VaultSession, JsError> {
        let (keys, kind) = match which {
            "notes" => (self.keys.notes.clone(), kluis_core::RecordKind::Note),
            "identities" => (self.keys.identities.clone(), kluis_core::RecordKind::Identity),
            _ => return Err(JsError::new("a vault is \"notes\" or \"identities\"")),
        };
        session::VaultSession::new(keys, kind, 0)
    }
}

impl Vault {
    pub(crate) fn unlocked(&self) -> &kluis_core::UnlockedKeyFile {
        &self.unlocked
    }
}

/// A whole number from JavaScript (a time in ms or s, a counter, a version): finite, not
/// negative, integral, and at most 2^53 − 1, the range in which a JavaScript number is exact.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
pub(crate) fn whole(x: f64, what: &str) -> Result<u64, JsError> {
    if x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x <= kluis_core::spec::MAX_COUNTER as f64 {
        Ok(x as u64)
    } else {
        Err(JsError::new(&format!("{what} must be a whole number from 0 to 2^53 - 1")))
    }
}

/// The version of kluis-core compiled in.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

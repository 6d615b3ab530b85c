//! The browser binding of kluis-core.
//!
//! This crate contains no logic: it converts between JavaScript values and kluis-core types and
//! hands out opaque handles. The vault secret and the keys derived from it stay in wasm memory,
//! zeroized on drop; no function returns them to JavaScript. (The browser app that uses this
//! binding arrives with the browser-app issue, and with it the WebCrypto route for bulk
//! decryption, which hands one per-record body key at a time to `crypto.subtle.importKey`.)
#![warn(missing_docs)]

use wasm_bindgen::prelude::*;

/// A key file opened in wasm memory. JavaScript holds only this handle.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Vault {
    unlocked: kluis_core::UnlockedKeyFile,
}

#[wasm_bindgen]
impl Vault {
    /// Opens a key file read from disk. `passphrase` is required for a protected file.
    /// The caller should overwrite `key_file` afterwards.
    pub fn unlock(key_file: &[u8], passphrase: Option<String>) -> Result<Vault, JsError> {
        let file = kluis_core::KeyFile::parse(key_file).map_err(|e| JsError::new(&e.to_string()))?;
        let pass = passphrase.map(kluis_core::Passphrase::new);
        let unlocked = file.unlock(pass.as_ref()).map_err(|e| JsError::new(&e.to_string()))?;
        if unlocked.info().kind != kluis_core::keyfile::KeyFileKind::Vault {
            return Err(JsError::new("this is the practice's break-glass key, not a practitioner's key file"));
        }
        Ok(Vault { unlocked })
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
}

/// The version of kluis-core compiled in.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

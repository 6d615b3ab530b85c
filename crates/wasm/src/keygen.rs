//! A key file made in the browser, for a practitioner who has none: the secret comes from the
//! browser's CSPRNG in wasm, and the file's text leaves wasm only to be saved as a download.

use kluis_core::{UnlockedKeyFile, VaultSecret};
use wasm_bindgen::prelude::*;
use zeroize::Zeroizing;

/// A new key file, held in wasm memory until the app takes its text for the download.
#[wasm_bindgen]
#[derive(Debug)]
pub struct NewKeyFile {
    text: Option<Zeroizing<Vec<u8>>>,
    fingerprint: String,
}

#[wasm_bindgen]
impl NewKeyFile {
    /// Makes a new plain key file (FORMAT.md §6) labelled `label`, created `now_secs`.
    pub fn generate(label: &str, now_secs: f64) -> Result<NewKeyFile, JsError> {
        let secret =
            VaultSecret::generate_with_rng(&mut kluis_core::rand_core::UnwrapErr(kluis_core::rand_core::OsRng));
        let file = UnlockedKeyFile::new(secret, label.trim(), crate::whole(now_secs, "a time")?, None)
            .map_err(|e| JsError::new(&e.to_string()))?;
        let text = file.to_text().map_err(|e| JsError::new(&e.to_string()))?;
        Ok(NewKeyFile {
            text: Some(Zeroizing::new(text.as_bytes().to_vec())),
            fingerprint: file.info().public.fingerprint().to_string(),
        })
    }

    /// The fingerprint, to give the practice admin for the register.
    #[wasm_bindgen(getter)]
    pub fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    /// The file's text, once (the wasm copy is wiped); the app wipes its copy after saving.
    pub fn take_text(&mut self) -> Result<Vec<u8>, JsError> {
        let text = self.text.take().ok_or_else(|| JsError::new("the key file was taken already"))?;
        Ok(text.to_vec())
    }
}

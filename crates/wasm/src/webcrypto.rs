//! The WebCrypto route for the bulk step of opening a record (kluis-core's `BodyJob` seam).
//!
//! kluis-core unwraps the per-record body key and checks the key commitment in wasm; the body
//! itself, which is most of the bytes, is decrypted by the browser's native AES-256-GCM. The
//! body key goes from wasm memory into `crypto.subtle.importKey` as a *non-extractable*
//! `CryptoKey` that can only decrypt: the import copies it from a temporary `Uint8Array` that
//! this module wipes as soon as `importKey` has taken its copy (the Web Cryptography API copies
//! the key data before `importKey` returns its promise). No key byte is handed to application
//! JavaScript. The padding check and cut are kluis-core's (`BodyJob::finish`).

use js_sys::{Array, Object, Reflect, Uint8Array};
use kluis_core::envelope::{self, Envelope};
use kluis_core::{Error, RecordHeader, VaultKeys};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AesGcmParams, CryptoKey, SubtleCrypto};

/// Why a WebCrypto open failed.
#[derive(Debug)]
pub enum OpenError {
    /// kluis-core refused the record (the same kinds as the native path).
    Core(Error),
    /// The browser's WebCrypto is missing or failed in a way that is not about the record.
    Browser(String),
}

fn subtle() -> Result<SubtleCrypto, OpenError> {
    let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))
        .ok()
        .and_then(|c| c.dyn_into::<web_sys::Crypto>().ok())
        .ok_or_else(|| OpenError::Browser("this browser has no Web Crypto API".into()))?;
    Ok(crypto.subtle())
}

fn browser(e: JsValue) -> OpenError {
    OpenError::Browser(e.as_string().unwrap_or_else(|| format!("{e:?}")))
}

/// Imports a body key as a non-extractable AES-GCM key that can only decrypt, wiping the
/// temporary copy at once.
async fn import_body_key(subtle: &SubtleCrypto, job: &envelope::BodyJob<'_>) -> Result<CryptoKey, OpenError> {
    let key = job.body_key_bytes();
    let temp = Uint8Array::from(&key[..]);
    let usages = Array::of1(&JsValue::from_str("decrypt"));
    let promise = subtle.import_key_with_str("raw", &temp, "AES-GCM", false, &usages);
    temp.fill(0, 0, temp.length());
    let key = JsFuture::from(promise.map_err(browser)?).await.map_err(browser)?;
    key.dyn_into::<CryptoKey>().map_err(|_| OpenError::Browser("importKey gave no CryptoKey".into()))
}

/// Opens a record envelope with kluis-core for everything but the body, and WebCrypto for
/// the body. Gives exactly what `kluis_core::envelope::open` gives (the test proves it).
pub async fn open(keys: &VaultKeys, bytes: &[u8]) -> Result<(RecordHeader, Vec<u8>), OpenError> {
    let env = Envelope::decode(bytes).map_err(OpenError::Core)?;
    let job = envelope::unwrap_body(keys, &env).map_err(OpenError::Core)?;
    let subtle = subtle()?;
    let key = import_body_key(&subtle, &job).await?;
    let mut iv = job.nonce().to_vec();
    let params = AesGcmParams::new_with_u8_slice("AES-GCM", &mut iv);
    params.set_additional_data_u8_array(&Uint8Array::from(job.aad()));
    params.set_tag_length(128);
    let promise = subtle
        .decrypt_with_object_and_u8_array(params.unchecked_ref::<Object>(), &key, job.ciphertext())
        .map_err(browser)?;
    // A failed authentication is an OperationError: the same opaque failure as natively.
    let padded = match JsFuture::from(promise).await {
        Ok(buf) => Uint8Array::new(&buf).to_vec(),
        Err(_) => return Err(OpenError::Core(Error::Decrypt)),
    };
    let header = job.header;
    let plaintext = job.finish(padded).map_err(OpenError::Core)?;
    Ok((header, plaintext))
}

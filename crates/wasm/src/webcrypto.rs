//! The WebCrypto route for the bulk steps of opening records (kluis-core's `BodyJob` seam) and
//! for hashing envelopes (`check_listing_hashed`).
//!
//! kluis-core unwraps each per-record body key and checks the key commitment in wasm; the body
//! itself, which is most of the bytes, is decrypted by the browser's native AES-256-GCM. The
//! body key goes from wasm memory into `crypto.subtle.importKey` as a *non-extractable*
//! `CryptoKey` that can only decrypt: the import copies it from a temporary `Uint8Array` that
//! this module wipes as soon as `importKey` has taken its copy (the Web Cryptography API copies
//! the key data before `importKey` returns its promise). No key byte is handed to application
//! JavaScript. The padding check is kluis-core's (`BodyJob::finish_padding`).
//!
//! Every buffer handed to WebCrypto is owned by JavaScript, never a view of wasm memory: under
//! load Chromium was seen to read a view after the call returned, when wasm had grown its
//! memory (10,000 concurrent opens failed authentication). The bodies are taken as views of
//! the page's own copy of the bytes (the sync response it fetched), so they cross no extra copy.

use js_sys::{Array, ArrayBuffer, Object, Promise, Reflect, Uint8Array};
use kluis_core::envelope::{self, BodyJob, Envelope};
use kluis_core::{EnvelopeHash, Error, RecordHeader, VaultKeys};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AesGcmParams, CryptoKey, SubtleCrypto};

/// Why a WebCrypto step failed.
#[derive(Debug)]
pub enum OpenError {
    /// kluis-core refused the record (the same kinds as the native path).
    Core(Error),
    /// The browser's WebCrypto is missing or failed in a way that is not about the record.
    Browser(String),
}

/// The page's `crypto.subtle`.
pub fn subtle() -> Result<SubtleCrypto, OpenError> {
    let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))
        .ok()
        .and_then(|c| c.dyn_into::<web_sys::Crypto>().ok())
        .ok_or_else(|| OpenError::Browser("this browser has no Web Crypto API".into()))?;
    Ok(crypto.subtle())
}

fn browser(e: JsValue) -> OpenError {
    let message = Reflect::get(&e, &JsValue::from_str("message")).ok().and_then(|m| m.as_string());
    OpenError::Browser(e.as_string().or(message).unwrap_or_else(|| format!("{e:?}")))
}

/// Awaits every promise at once (`Promise.all`).
async fn all(promises: &Array) -> Result<Array, JsValue> {
    Ok(JsFuture::from(Promise::all(promises)).await?.unchecked_into())
}

/// The position of `part` inside `whole` (a subslice of it), so that the same bytes can be
/// taken from the page's copy.
pub(crate) fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize)
}

/// A record whose body key is unwrapped and being imported.
#[derive(Debug)]
pub struct Pending<'a> {
    job: BodyJob<'a>,
    body: Uint8Array,
    import: Promise,
}

/// Unwraps one envelope's body key in wasm (kluis-core) and starts importing it as a
/// non-extractable decrypt-only key, wiping the temporary copy at once (the import has taken
/// its own by then). `bytes` is the envelope in wasm memory, `js` the same bytes as the page
/// holds them.
pub fn start<'a>(
    subtle: &SubtleCrypto,
    keys: &VaultKeys,
    bytes: &'a [u8],
    js: &Uint8Array,
) -> Result<Pending<'a>, OpenError> {
    let env = Envelope::decode(bytes).map_err(OpenError::Core)?;
    let job = envelope::unwrap_body(keys, &env).map_err(OpenError::Core)?;
    let key = job.body_key_bytes();
    let temp = Uint8Array::from(&key[..]);
    let usages = Array::of1(&JsValue::from_str("decrypt"));
    let import = subtle.import_key_with_str("raw", &temp, "AES-GCM", false, &usages);
    temp.fill(0, 0, temp.length());
    let import = import.map_err(browser)?;
    let from = offset_in(bytes, job.ciphertext());
    let to = from.saturating_add(job.ciphertext().len());
    let (from, to) = (u32::try_from(from), u32::try_from(to));
    let (Ok(from), Ok(to)) = (from, to) else {
        return Err(OpenError::Browser("an envelope is too large for this browser".into()));
    };
    Ok(Pending { job, body: js.subarray(from, to), import })
}

/// Decrypts every started record's body with its imported key, all at once, and checks and
/// cuts the padding (kluis-core). Resolves to each record's plaintext, in order, as a view of
/// the buffer WebCrypto returned. If any fails, the whole call fails; a failed authentication
/// is the same opaque `auth-fail` as natively.
pub async fn finish(subtle: &SubtleCrypto, pending: Vec<Pending<'_>>) -> Result<Vec<Uint8Array>, OpenError> {
    let imports: Array = pending.iter().map(|p| &p.import).collect();
    let keys = all(&imports).await.map_err(browser)?;
    let decrypts = pending
        .iter()
        .zip(keys.iter())
        .map(|(p, key)| {
            let key = key.dyn_ref::<CryptoKey>().ok_or_else(|| OpenError::Browser("importKey gave no key".into()))?;
            let params = AesGcmParams::new("AES-GCM", &Uint8Array::from(&p.job.nonce()[..]));
            params.set_additional_data_u8_array(&Uint8Array::from(p.job.aad()));
            params.set_tag_length(128);
            subtle.decrypt_with_object_and_js_u8_array(params.unchecked_ref::<Object>(), key, &p.body).map_err(browser)
        })
        .collect::<Result<Array, _>>()?;
    let bodies = match all(&decrypts).await {
        Ok(bodies) => bodies,
        Err(e)
            if Reflect::get(&e, &JsValue::from_str("name")).ok().and_then(|n| n.as_string()).as_deref()
                == Some("OperationError") =>
        {
            return Err(OpenError::Core(Error::Decrypt));
        }
        Err(e) => return Err(browser(e)),
    };
    pending
        .into_iter()
        .zip(bodies.iter())
        .map(|(p, body)| {
            let padded = Uint8Array::new(&body.unchecked_into::<ArrayBuffer>());
            let record_len = u32::try_from(p.job.plaintext_len()).map_err(|_| OpenError::Core(Error::Decrypt))?;
            let padding = padded.subarray(record_len, padded.length()).to_vec();
            let len = p.job.finish_padding(padded.length() as usize, &padding).map_err(OpenError::Core)?;
            let len = u32::try_from(len).map_err(|_| OpenError::Core(Error::Decrypt))?;
            Ok(padded.subarray(0, len))
        })
        .collect()
}

/// Starts SHA-256 over each of `envelopes` (the page's copies) in WebCrypto.
pub fn start_digests(subtle: &SubtleCrypto, envelopes: &[Uint8Array]) -> Result<Array, OpenError> {
    envelopes.iter().map(|e| subtle.digest_with_str_and_js_u8_array("SHA-256", e).map_err(browser)).collect()
}

/// Awaits the digests `start_digests` started.
pub async fn digests(promises: &Array) -> Result<Vec<EnvelopeHash>, OpenError> {
    let all = all(promises).await.map_err(browser)?;
    all.iter()
        .map(|d| {
            let bytes: [u8; 32] = Uint8Array::new(&d.unchecked_into::<ArrayBuffer>())
                .to_vec()
                .try_into()
                .map_err(|_| OpenError::Browser("SHA-256 gave no 32 bytes".into()))?;
            Ok(EnvelopeHash::from_bytes(bytes))
        })
        .collect()
}

/// Opens one record envelope with kluis-core for everything but the body, and WebCrypto for
/// the body. Gives exactly what `kluis_core::envelope::open` gives (the test proves it).
pub async fn open(keys: &VaultKeys, bytes: &[u8]) -> Result<(RecordHeader, Vec<u8>), OpenError> {
    let subtle = subtle()?;
    let js = Uint8Array::from(bytes);
    let pending = start(&subtle, keys, bytes, &js)?;
    let header = pending.job.header;
    let plaintext = finish(&subtle, vec![pending]).await?.pop().map(|p| p.to_vec());
    Ok((header, plaintext.ok_or_else(|| OpenError::Browser("nothing was opened".into()))?))
}

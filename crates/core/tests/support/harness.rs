// Shared by the test binaries that also run in headless Chromium (wasm-bindgen-test).
// Included with `#[path = "support/harness.rs"] mod harness;`.
#![allow(dead_code, unreachable_pub)]

/// Decodes lower-case hex, panicking on bad input (test data only).
pub fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap_or_else(|e| panic!("bad hex in test data {s:?}: {e}"))
}

/// A deterministic RNG for reproducible test objects.
pub fn rng(seed: u8) -> rand_chacha::ChaCha20Rng {
    use rand_core::SeedableRng;
    rand_chacha::ChaCha20Rng::from_seed([seed; 32])
}

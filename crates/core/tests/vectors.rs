//! Known-answer tests from external sources (see `vectors/SOURCES.md`), for every primitive
//! kluis-core relies on. Runs natively and, compiled to wasm32, in headless Chromium, so the
//! browser build of each primitive is checked against the same answers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

#[path = "support/harness.rs"]
mod harness;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use harness::unhex;
use serde_json::Value;

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("field {k} missing"))
}

/// Wycheproof AES-GCM: every 96-bit-IV, 128-bit-tag case, for AES-128/192/256.
#[test]
fn wycheproof_aes_gcm() {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm, Nonce};
    type Aes192Gcm = AesGcm<aes_gcm::aes::Aes192, aes_gcm::aead::consts::U12>;

    let v = json(include_str!("vectors/aes_gcm_test.json"));
    let (mut run, mut skipped) = (0, 0);
    for g in v["testGroups"].as_array().unwrap() {
        if g["ivSize"] != 96 || g["tagSize"] != 128 {
            skipped += g["tests"].as_array().unwrap().len();
            continue;
        }
        for t in g["tests"].as_array().unwrap() {
            let (key, iv, aad, msg) = (unhex(s(t, "key")), unhex(s(t, "iv")), unhex(s(t, "aad")), unhex(s(t, "msg")));
            let mut ct = unhex(s(t, "ct"));
            ct.extend(unhex(s(t, "tag")));
            let nonce = Nonce::from_slice(&iv);
            let pt = Payload { msg: &ct, aad: &aad };
            let (opened, sealed) = match key.len() {
                16 => {
                    let c = Aes128Gcm::new_from_slice(&key).unwrap();
                    (c.decrypt(nonce, pt), c.encrypt(nonce, Payload { msg: &msg, aad: &aad }))
                }
                24 => {
                    let c = Aes192Gcm::new_from_slice(&key).unwrap();
                    (c.decrypt(nonce, pt), c.encrypt(nonce, Payload { msg: &msg, aad: &aad }))
                }
                32 => {
                    let c = Aes256Gcm::new_from_slice(&key).unwrap();
                    (c.decrypt(nonce, pt), c.encrypt(nonce, Payload { msg: &msg, aad: &aad }))
                }
                n => panic!("unexpected key size {n}"),
            };
            let id = &t["tcId"];
            match s(t, "result") {
                "valid" => {
                    assert_eq!(opened.unwrap(), msg, "tcId {id}");
                    assert_eq!(sealed.unwrap(), ct, "tcId {id}");
                }
                "invalid" => assert!(opened.is_err(), "tcId {id} must be refused"),
                r => panic!("tcId {id}: unexpected result {r}"),
            }
            run += 1;
        }
    }
    println!("Wycheproof AES-GCM: {run} run, {skipped} skipped (IV or tag size other than 96/128 bits)");
    assert_eq!((run, skipped), (197, 119), "the vector file changed");
}

/// Wycheproof X25519 with x25519-dalek, and kluis's refusal of every all-zero shared secret:
/// sealing a break-glass escrow to such a public key must fail (RFC 9180 §7.1.4).
#[test]
fn wycheproof_x25519_and_zero_shared_secret_refusal() {
    use kluis_core::{KeyHierarchy, PublicKey, RecordHeader, RecordId, RecordKind, VaultSecret, escrow};

    let v = json(include_str!("vectors/x25519_test.json"));
    let secret = VaultSecret::generate_with_rng(&mut harness::rng(7));
    let header =
        RecordHeader::first(KeyHierarchy::derive(&secret).notes.id, RecordId::from_bytes([1; 16]), RecordKind::Escrow);
    let (mut run, mut zero) = (0, 0);
    for g in v["testGroups"].as_array().unwrap() {
        for t in g["tests"].as_array().unwrap() {
            let sk: [u8; 32] = unhex(s(t, "private")).try_into().unwrap();
            let pk: [u8; 32] = unhex(s(t, "public")).try_into().unwrap();
            let shared = unhex(s(t, "shared"));
            let out = x25519_dalek::StaticSecret::from(sk).diffie_hellman(&x25519_dalek::PublicKey::from(pk));
            assert_eq!(out.as_bytes().as_slice(), shared.as_slice(), "tcId {}", t["tcId"]);
            if shared.iter().all(|b| *b == 0) {
                zero += 1;
                assert!(!out.was_contributory());
                let sealed = escrow::seal_with_rng(&secret, &PublicKey::from_bytes(pk), &header, &mut harness::rng(1));
                assert!(sealed.is_err(), "tcId {}: escrow to a low-order key must be refused", t["tcId"]);
            }
            run += 1;
        }
    }
    println!("Wycheproof X25519: {run} run, {zero} with an all-zero shared secret refused");
    assert_eq!((run, zero), (518, 31));
}

/// Wycheproof HKDF-SHA256, including the refusal of outputs longer than 255·32 bytes.
#[test]
fn wycheproof_hkdf_sha256() {
    let v = json(include_str!("vectors/hkdf_sha256_test.json"));
    let mut run = 0;
    for g in v["testGroups"].as_array().unwrap() {
        for t in g["tests"].as_array().unwrap() {
            let (ikm, salt, info) = (unhex(s(t, "ikm")), unhex(s(t, "salt")), unhex(s(t, "info")));
            let size = t["size"].as_u64().unwrap() as usize;
            let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(&salt), &ikm);
            let mut okm = vec![0u8; size];
            let r = hk.expand(&info, &mut okm);
            match s(t, "result") {
                "valid" => {
                    r.unwrap();
                    assert_eq!(okm, unhex(s(t, "okm")), "tcId {}", t["tcId"]);
                }
                _ => assert!(r.is_err(), "tcId {}", t["tcId"]),
            }
            run += 1;
        }
    }
    assert_eq!(run, 86);
}

/// RFC 9180 vectors for the escrow suite, all four modes: key derivation, sender side
/// (deterministic ephemeral key), receiver side, every encryption and export, and tampering.
#[test]
fn rfc9180_hpke_x25519_sha256_aes256gcm() {
    use hpke::aead::AesGcm256;
    use hpke::kdf::HkdfSha256;
    use hpke::kem::X25519HkdfSha256 as Kem;
    use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, PskBundle, Serializable};

    /// An RNG that yields a fixed 32-byte ikmE, so the sender side is reproducible.
    struct Fixed(Vec<u8>);
    impl rand_core::RngCore for Fixed {
        fn next_u32(&mut self) -> u32 {
            let mut b = [0u8; 4];
            self.fill_bytes(&mut b);
            u32::from_le_bytes(b)
        }
        fn next_u64(&mut self) -> u64 {
            let mut b = [0u8; 8];
            self.fill_bytes(&mut b);
            u64::from_le_bytes(b)
        }
        fn fill_bytes(&mut self, dst: &mut [u8]) {
            let n = dst.len();
            dst.copy_from_slice(&self.0[..n]);
            self.0.drain(..n);
        }
    }
    impl rand_core::CryptoRng for Fixed {}

    let v = json(include_str!("vectors/rfc9180-x25519-sha256-aes256gcm.json"));
    let mut encryptions = 0;
    for case in v.as_array().unwrap() {
        let mode = case["mode"].as_u64().unwrap();
        let info = unhex(s(case, "info"));
        let (skr, pkr) = Kem::derive_keypair(&unhex(s(case, "ikmR")));
        assert_eq!(skr.to_bytes().as_slice(), unhex(s(case, "skRm")).as_slice());
        assert_eq!(pkr.to_bytes().as_slice(), unhex(s(case, "pkRm")).as_slice());
        // kluis's own X25519 derivation (x25519-dalek) agrees with hpke's: the escrow relies on it.
        let sk_arr: [u8; 32] = unhex(s(case, "skRm")).try_into().unwrap();
        let ours = kluis_core::escrow::BreakGlassSecret::from_bytes(sk_arr).public_key();
        assert_eq!(ours.to_bytes().as_slice(), pkr.to_bytes().as_slice());

        let sender = (mode >= 2).then(|| Kem::derive_keypair(&unhex(s(case, "ikmS"))));
        let psk = (mode == 1 || mode == 3).then(|| (unhex(s(case, "psk")), unhex(s(case, "psk_id"))));
        let bundle = psk.as_ref().map(|(k, id)| PskBundle::new(k, id).unwrap());
        let mode_s = match (&sender, &bundle) {
            (None, None) => OpModeS::Base,
            (None, Some(b)) => OpModeS::Psk(*b),
            (Some(kp), None) => OpModeS::Auth(kp.clone()),
            (Some(kp), Some(b)) => OpModeS::AuthPsk(kp.clone(), *b),
        };
        let mode_r = match (&sender, &bundle) {
            (None, None) => OpModeR::Base,
            (None, Some(b)) => OpModeR::Psk(*b),
            (Some(kp), None) => OpModeR::Auth(kp.1.clone()),
            (Some(kp), Some(b)) => OpModeR::AuthPsk(kp.1.clone(), *b),
        };
        let (enc, mut ctx_s) = hpke::setup_sender::<AesGcm256, HkdfSha256, Kem, _>(
            &mode_s,
            &pkr,
            &info,
            &mut Fixed(unhex(s(case, "ikmE"))),
        )
        .unwrap();
        assert_eq!(enc.to_bytes().as_slice(), unhex(s(case, "enc")).as_slice(), "mode {mode}: enc");
        let enc_r = <Kem as hpke::Kem>::EncappedKey::from_bytes(&unhex(s(case, "enc"))).unwrap();
        let mut ctx_r = hpke::setup_receiver::<AesGcm256, HkdfSha256, Kem>(&mode_r, &skr, &enc_r, &info).unwrap();
        for e in case["encryptions"].as_array().unwrap() {
            let (aad, pt, ct) = (unhex(s(e, "aad")), unhex(s(e, "pt")), unhex(s(e, "ct")));
            assert_eq!(ctx_s.seal(&pt, &aad).unwrap(), ct, "mode {mode}: seal");
            assert_eq!(ctx_r.open(&ct, &aad).unwrap(), pt, "mode {mode}: open");
            encryptions += 1;
        }
        for x in case["exports"].as_array().unwrap() {
            let mut out = vec![0u8; x["L"].as_u64().unwrap() as usize];
            ctx_r.export(&unhex(s(x, "exporter_context")), &mut out).unwrap();
            assert_eq!(out, unhex(s(x, "exported_value")), "mode {mode}: export");
        }
        // Negative: one flipped bit in enc, ct, aad or info, or (auth) a wrong sender key, fails.
        let e0 = &case["encryptions"][0];
        let (aad, ct) = (unhex(s(e0, "aad")), unhex(s(e0, "ct")));
        let open_first = |enc: &[u8], info: &[u8], aad: &[u8], ct: &[u8], mode_r: &OpModeR<Kem>| {
            let Ok(enc) = <Kem as hpke::Kem>::EncappedKey::from_bytes(enc) else { return false };
            hpke::setup_receiver::<AesGcm256, HkdfSha256, Kem>(mode_r, &skr, &enc, info)
                .and_then(|mut c| c.open(ct, aad))
                .is_ok()
        };
        let enc_bytes = unhex(s(case, "enc"));
        assert!(open_first(&enc_bytes, &info, &aad, &ct, &mode_r));
        let flip = |b: &[u8], i: usize| {
            let mut b = b.to_vec();
            b[i] ^= 1;
            b
        };
        assert!(!open_first(&flip(&enc_bytes, 5), &info, &aad, &ct, &mode_r), "mode {mode}: flipped enc");
        assert!(!open_first(&enc_bytes, &flip(&info, 0), &aad, &ct, &mode_r), "mode {mode}: flipped info");
        assert!(!open_first(&enc_bytes, &info, &flip(&aad, 0), &ct, &mode_r), "mode {mode}: flipped aad");
        assert!(!open_first(&enc_bytes, &info, &aad, &flip(&ct, 3), &mode_r), "mode {mode}: flipped ct");
        if mode == 2 {
            let (_, wrong_pk) = Kem::derive_keypair(&[9u8; 32]);
            assert!(!open_first(&enc_bytes, &info, &aad, &ct, &OpModeR::Auth(wrong_pk)), "wrong sender key");
        }
    }
    assert_eq!(encryptions, 4 * 257);
}

/// RFC 9106 §5.3 (Argon2id with secret and associated data) and the reference suite's Argon2id
/// v=19 cases, with the parameters kluis uses (Argon2id, version 0x13).
#[test]
fn rfc9106_argon2id() {
    use argon2::{Algorithm, Argon2, AssociatedData, ParamsBuilder, Version};

    let v = json(include_str!("vectors/argon2-kat.json"));
    let mut run = 0;
    for t in v["rfc9106_vectors"].as_array().unwrap() {
        if s(t, "type") != "argon2id" {
            continue;
        }
        let params = ParamsBuilder::new()
            .m_cost(t["m_cost_kib"].as_u64().unwrap() as u32)
            .t_cost(t["t_cost"].as_u64().unwrap() as u32)
            .p_cost(t["p_cost"].as_u64().unwrap() as u32)
            .data(AssociatedData::new(&unhex(s(t, "associated_data_hex"))).unwrap())
            .output_len(32)
            .build()
            .unwrap();
        let secret = unhex(s(t, "secret_hex"));
        let a = Argon2::new_with_secret(&secret, Algorithm::Argon2id, Version::V0x13, params).unwrap();
        let mut out = [0u8; 32];
        a.hash_password_into(&unhex(s(t, "password_hex")), &unhex(s(t, "salt_hex")), &mut out).unwrap();
        assert_eq!(out.as_slice(), unhex(s(t, "tag_hex")).as_slice());
        run += 1;
    }
    for t in v["phc_reference_argon2id_vectors"].as_array().unwrap() {
        let m = t["m_cost_kib"].as_u64().unwrap() as u32;
        if m > 65536 {
            // The 256 MiB case runs natively only: a browser tab in CI need not hold it.
            if cfg!(target_arch = "wasm32") {
                continue;
            }
        }
        let params = argon2::Params::new(
            m,
            t["t_cost"].as_u64().unwrap() as u32,
            t["p_cost"].as_u64().unwrap() as u32,
            Some(32),
        )
        .unwrap();
        let mut out = [0u8; 32];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(s(t, "password_ascii").as_bytes(), s(t, "salt_ascii").as_bytes(), &mut out)
            .unwrap();
        assert_eq!(out.as_slice(), unhex(s(t, "tag_hex")).as_slice(), "{}", s(t, "phc_string"));
        run += 1;
    }
    println!("Argon2id: {run} vectors run");
    let expected = if cfg!(target_arch = "wasm32") { 1 + 7 } else { 1 + 8 };
    assert_eq!(run, expected, "the vector file changed");
}

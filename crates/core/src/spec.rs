//! Every magic value, label and limit of `docs/FORMAT.md`, each citing its section.
//!
//! Changing any value here changes the format: the frozen testkit in `tests/testkit/` fails.

/// Format version of every v1 object (FORMAT.md §1).
pub const FORMAT_VERSION: u64 = 1;

// ---- FORMAT.md §2 Key hierarchy -------------------------------------------------------------

/// HKDF-Extract salt for the key-file secret (FORMAT.md §2.1).
pub const HKDF_SALT: &[u8] = b"kluis/v1/hkdf-salt";
/// HKDF-Expand label prefix of a vault's record-wrapping key; the vault kind byte follows (§2.2).
pub const LABEL_WRAP_KEY: &[u8] = b"kluis/v1/record-wrap-key";
/// HKDF-Expand label prefix of a vault's manifest MAC key; the vault kind byte follows (§2.2).
pub const LABEL_MANIFEST_KEY: &[u8] = b"kluis/v1/manifest-mac-key";
/// HKDF-Expand label of the key-file MAC key (§2.2).
pub const LABEL_KEY_FILE_MAC_KEY: &[u8] = b"kluis/v1/key-file-mac-key";
/// SHA-256 prefix of the vault id; the vault kind byte and the public key follow (§2.3).
pub const LABEL_VAULT_ID: &[u8] = b"kluis/v1/vault-id";
/// SHA-256 prefix of a public-key fingerprint (§2.4).
pub const LABEL_FINGERPRINT: &[u8] = b"kluis/v1/fingerprint";
/// Bytes of a fingerprint: 160 bits, 32 base32 characters (§2.4).
pub const FINGERPRINT_BYTES: usize = 20;
/// Characters per fingerprint group when displayed (§2.4).
pub const FINGERPRINT_GROUP: usize = 4;
/// Bytes of a vault id (§2.3).
pub const VAULT_ID_BYTES: usize = 16;
/// Bytes of every symmetric key and of the key-file secret (§2).
pub const KEY_BYTES: usize = 32;

// ---- FORMAT.md §3 Record envelope ------------------------------------------------------------

/// Suite 1: AES-256-GCM key wrap + HKDF-SHA256 + HMAC-SHA256 commitment + AES-256-GCM body (§3.1).
pub const SUITE_RECORD: u64 = 1;
/// Suite 2: HPKE base mode DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM (§5).
pub const SUITE_ESCROW: u64 = 2;
/// Prefix of the associated data of every envelope (§3.3).
pub const LABEL_RECORD_AAD: &[u8] = b"kluis/v1/record";
/// HKDF-Expand label of the body key, from the data key (§3.4).
pub const LABEL_BODY_KEY: &[u8] = b"kluis/v1/body-key";
/// HKDF-Expand label of the commitment key, from the data key (§3.4).
pub const LABEL_COMMIT_KEY: &[u8] = b"kluis/v1/commit-key";
/// HMAC prefix of the key commitment (§3.4).
pub const LABEL_COMMITMENT: &[u8] = b"kluis/v1/commitment";
/// Bytes of a record id (§3.2).
pub const RECORD_ID_BYTES: usize = 16;
/// Bytes of an AES-GCM nonce (§3.1).
pub const NONCE_BYTES: usize = 12;
/// Bytes of an AES-GCM tag (§3.1).
pub const TAG_BYTES: usize = 16;
/// Bytes of a SHA-256 / HMAC-SHA256 output (§3).
pub const HASH_BYTES: usize = 32;
/// Bytes of the wrapped-key plaintext: data key ‖ u32 plaintext length (§3.4).
pub const WRAPPED_PLAINTEXT_BYTES: usize = KEY_BYTES + 4;
/// Bytes of the wrapped key: its plaintext plus the tag (§3.4).
pub const WRAPPED_KEY_BYTES: usize = WRAPPED_PLAINTEXT_BYTES + TAG_BYTES;
/// Largest plaintext a record may hold: 16 MiB (§3.5).
pub const MAX_PLAINTEXT_BYTES: usize = 16 * 1024 * 1024;
/// Largest encoded envelope a decoder accepts, checked before anything is parsed (§3.5).
pub const MAX_ENVELOPE_BYTES: usize = MAX_PLAINTEXT_BYTES + 1024;
/// The smallest padded body (§3.5): a record of any shorter length is padded up to this.
pub const MIN_PADDED_BYTES: usize = 32;

// ---- FORMAT.md §4 Manifest -------------------------------------------------------------------

/// HMAC prefix of the manifest MAC (§4.2).
pub const LABEL_MANIFEST_MAC: &[u8] = b"kluis/v1/manifest";
/// SHA-256 prefix of the manifest's history chain (§4.3): the genesis value is
/// SHA-256(label ‖ vault id), each save's is SHA-256(label ‖ the save's fields 1–6).
pub const LABEL_MANIFEST_CHAIN: &[u8] = b"kluis/v1/manifest-chain";
/// Most entries a manifest may list (§4.1).
pub const MAX_MANIFEST_ENTRIES: u64 = 1_000_000;
/// Highest counter a save may set (§4.4): 2^53 − 1, so that a browser's JavaScript numbers
/// hold every counter exactly.
pub const MAX_COUNTER: u64 = (1 << 53) - 1;
/// Largest encoded manifest a decoder accepts (§4.1).
pub const MAX_MANIFEST_BYTES: usize = 64 * 1024 * 1024;

// ---- FORMAT.md §5 Break-glass escrow ---------------------------------------------------------

/// HPKE `info` prefix of a break-glass escrow; the vault id follows (§5.2).
pub const LABEL_ESCROW_INFO: &[u8] = b"kluis/v1/escrow";
/// Bytes of an HPKE X25519 encapsulated key (RFC 9180 §7.1 Table 2: Nenc = 32).
pub const ESCROW_ENC_BYTES: usize = 32;
/// Bytes of the sealed key-file secret: 32 + tag (§5.2).
pub const ESCROW_SEALED_BYTES: usize = KEY_BYTES + TAG_BYTES;

// ---- FORMAT.md §6 Key file -------------------------------------------------------------------

/// First line of every v1 key file (§6.1).
pub const KEY_FILE_MAGIC: &str = "# kluis key file v1: keep it secret, keep a backup (docs/FORMAT.md)";
/// First line of every v1 break-glass key file (§6.5).
pub const BREAK_GLASS_FILE_MAGIC: &str = "# kluis break-glass key v1: keep it offline, keep a backup (docs/FORMAT.md)";
/// Bech32 human-readable part of a break-glass secret line, written upper-case (§6.5).
pub const HRP_BREAK_GLASS_SECRET: &str = "kluis-break-glass-key-";
/// HMAC prefix of a break-glass key file's MAC (§6.5).
pub const LABEL_BREAK_GLASS_FILE_MAC: &[u8] = b"kluis/v1/break-glass-key-file";
/// Bech32 human-readable part of a plain secret line, written upper-case (§6.2).
pub const HRP_SECRET: &str = "kluis-secret-key-";
/// Bech32 human-readable part of a passphrase-protected secret line, written upper-case (§6.3).
pub const HRP_PROTECTED: &str = "kluis-protected-key-";
/// Bech32 human-readable part of a vault public key (§6.2).
pub const HRP_PUBLIC: &str = "kluispub";
/// Bech32 human-readable part of a break-glass public key (§6.2).
pub const HRP_BREAK_GLASS: &str = "kluisbg";
/// HMAC prefix of the key-file MAC (§6.4).
pub const LABEL_KEY_FILE_MAC: &[u8] = b"kluis/v1/key-file";
/// AES-GCM associated-data prefix of a protected secret (§6.3).
pub const LABEL_PROTECTED_AAD: &[u8] = b"kluis/v1/protected-key";
/// Version byte of the protected-secret payload (§6.3).
pub const PROTECTED_VERSION: u8 = 1;
/// Bytes of the Argon2id salt (RFC 9106 §3.1 recommends 128 bits).
pub const ARGON2_SALT_BYTES: usize = 16;
/// Argon2id memory floor in KiB (64 MiB; security-anchors §2.1, offline attack).
pub const ARGON2_MIN_M_KIB: u32 = 64 * 1024;
/// Argon2id memory ceiling in KiB (1 GiB; a browser tab must be able to unlock).
pub const ARGON2_MAX_M_KIB: u32 = 1024 * 1024;
/// Argon2id pass-count floor (RFC 9106 §4 second recommendation: t=3).
pub const ARGON2_MIN_T: u32 = 3;
/// Argon2id pass-count ceiling.
pub const ARGON2_MAX_T: u32 = 16;
/// Argon2id lane floor.
pub const ARGON2_MIN_P: u32 = 1;
/// Argon2id lane ceiling.
pub const ARGON2_MAX_P: u32 = 4;
/// Longest label, in characters (§6.1).
pub const MAX_LABEL_CHARS: usize = 64;
/// Longest label, in UTF-8 bytes, so its length fits one byte in the paper backup (§6.1, §7).
pub const MAX_LABEL_BYTES: usize = 255;
/// Latest creation time a key file can state: 9999-12-31T23:59:59Z, the last RFC 3339 year (§6.1).
pub const MAX_CREATED_SECS: u64 = 253_402_300_799;
/// Largest key file a parser reads, checked before anything is parsed (§6.1).
pub const MAX_KEY_FILE_BYTES: usize = 4096;
/// Version byte of the paper-backup payload (§7).
pub const PAPER_VERSION: u8 = 1;
/// SHA-256 prefix of a paper group's check character (§7).
pub const LABEL_PAPER_GROUP: &[u8] = b"kluis/v1/paper-group";
/// Data characters per paper group; a check character follows each group (§7).
pub const PAPER_GROUP_DATA_CHARS: usize = 4;
/// Bytes of the paper payload's final checksum (§7).
pub const PAPER_CHECKSUM_BYTES: usize = 4;
/// Shortest passphrase accepted when protecting a key file, in characters (§6.3).
pub const MIN_PASSPHRASE_CHARS: usize = 12;
/// Lowest acceptable strength score, zxcvbn scale 0..=4 (§6.3).
pub const MIN_PASSPHRASE_SCORE: u8 = 3;

// ---- FORMAT.md §10 Wire bodies (browser ↔ server) --------------------------------------------

/// Most records one save may carry (§10.1).
pub const MAX_SAVE_RECORDS: u64 = 1024;
/// Largest encoded save request (§10.1): one envelope of the largest size and a manifest update.
pub const MAX_SAVE_BYTES: usize = MAX_ENVELOPE_BYTES + 4 * 1024 * 1024;
/// Most manifest updates one sync response may carry (§10.2).
pub const MAX_SYNC_UPDATES: u64 = MAX_MANIFEST_ENTRIES;
/// Largest encoded sync response a client accepts (§10.2).
pub const MAX_SYNC_BYTES: usize = 1024 * 1024 * 1024;

// ---- FORMAT.md §12 Export ---------------------------------------------------------------------

/// The export format's version (§12).
pub const EXPORT_VERSION: u64 = 1;
/// Largest export a reader accepts (§12), checked before parsing.
pub const MAX_EXPORT_BYTES: usize = 2 * 1024 * 1024 * 1024 - 1;
/// Most updates, records, or versions of one record in an export (§12).
pub const MAX_EXPORT_ITEMS: u64 = MAX_COUNTER;

// ---- FORMAT.md §13 Server backup --------------------------------------------------------------

/// The first bytes of a server backup's plaintext (§13.1).
pub const BACKUP_MAGIC: &[u8; 16] = b"kluis-backup/v1\n";
/// Bytes of the plaintext's header: the magic and the creation time (§13.1).
pub const BACKUP_HEADER_BYTES: usize = 16 + 8;
/// What the signed message starts with, then a zero byte and the digest (§13.3).
pub const BACKUP_SIGNATURE_LABEL: &[u8] = b"kluis/v1/backup";
/// Longest name of a file item (§13.2).
pub const MAX_BACKUP_FILE_NAME: usize = 32;
/// Largest file item (§13.2): key files, not data.
pub const MAX_BACKUP_FILE_BYTES: usize = 4096;
/// Longest key of a pair (§13.2).
pub const MAX_BACKUP_KEY_BYTES: usize = 4096;
/// Largest value of a pair (§13.2): a manifest of the largest size fits.
pub const MAX_BACKUP_VALUE_BYTES: usize = MAX_MANIFEST_BYTES;
/// Bytes of the signer's Ed25519 public key and of a signature (§13.3).
pub const BACKUP_PUBLIC_KEY_BYTES: usize = 32;
/// Bytes of an Ed25519 signature (§13.3).
pub const BACKUP_SIGNATURE_BYTES: usize = 64;

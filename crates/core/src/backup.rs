//! The plaintext of a server backup (FORMAT.md §13): a header, then items (the key files the
//! server needs, then every sled tree's pairs), an end item with the count of pairs, and the
//! server's Ed25519 signature over a digest of all of that. The server encrypts it to the
//! operator's age recipients; `age -d` alone gives back these bytes.
//!
//! This module does no I/O: [`decode_item`] takes what has been read so far and says how many
//! more bytes it needs, so a reader can stream a backup of any size through it, and [`Order`]
//! checks the canonical order (the only one a writer may produce). The caller hashes and
//! verifies; the digest covers the header and every item up to and including the end item.

use crate::error::{Error, Result, malformed};
use crate::spec::{
    BACKUP_HEADER_BYTES, BACKUP_MAGIC, BACKUP_PUBLIC_KEY_BYTES, BACKUP_SIGNATURE_BYTES, BACKUP_SIGNATURE_LABEL,
    MAX_BACKUP_FILE_BYTES, MAX_BACKUP_FILE_NAME, MAX_BACKUP_KEY_BYTES, MAX_BACKUP_VALUE_BYTES,
};

const WHAT: &str = "backup";

/// Item tags (§13.2).
const TAG_FILE: u8 = 1;
const TAG_TREE: u8 = 2;
const TAG_PAIR: u8 = 3;
const TAG_END: u8 = 4;
const TAG_SIGNATURE: u8 = 5;

/// Which of the server's three stores a tree belongs to (§13.2), in their order in a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StoreKind {
    /// `DATA/accounts`.
    Accounts = 1,
    /// `DATA/notes`.
    Notes = 2,
    /// `DATA/identities`.
    Identities = 3,
}

impl StoreKind {
    /// All three, in backup order.
    pub const ALL: [StoreKind; 3] = [StoreKind::Accounts, StoreKind::Notes, StoreKind::Identities];

    /// The store's directory name in the data directory.
    pub fn dir_name(self) -> &'static str {
        match self {
            StoreKind::Accounts => "accounts",
            StoreKind::Notes => "notes",
            StoreKind::Identities => "identities",
        }
    }

    fn from_byte(b: u8) -> Result<Self> {
        match b {
            1 => Ok(StoreKind::Accounts),
            2 => Ok(StoreKind::Notes),
            3 => Ok(StoreKind::Identities),
            v => Err(Error::Unsupported { what: "backup store", value: u64::from(v) }),
        }
    }
}

/// One item of a backup (§13.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item<'a> {
    /// A file the server needs besides its stores (`server.key`, `signing.key`).
    File {
        /// Its name: 1 to 32 of `a-z 0-9 . _ -`.
        name: &'a str,
        /// Its bytes.
        bytes: &'a [u8],
    },
    /// The start of a sled tree; its pairs follow.
    Tree {
        /// The store.
        store: StoreKind,
        /// The tree's sled name (1 to 255 bytes).
        name: &'a [u8],
    },
    /// A key and its value in the current tree.
    Pair {
        /// The key.
        key: &'a [u8],
        /// The value.
        value: &'a [u8],
    },
    /// The end of the content: how many pairs came before.
    End {
        /// The count of pair items.
        pairs: u64,
    },
    /// The server's signature (the last item).
    Signature {
        /// The signer's Ed25519 public key.
        public_key: [u8; BACKUP_PUBLIC_KEY_BYTES],
        /// Ed25519 over [`signed_message`] of the digest.
        signature: [u8; BACKUP_SIGNATURE_BYTES],
    },
}

/// What [`decode_item`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// An item, and how many bytes of the input it took.
    Item(Item<'a>, usize),
    /// The input ends inside an item: at least this many bytes are needed in all (never more
    /// than the limits allow, so a reader may read that far before calling again).
    Incomplete(usize),
}

/// The header: the magic and when the backup was made (ms since the Unix epoch).
pub fn encode_header(created_ms: u64) -> [u8; BACKUP_HEADER_BYTES] {
    let mut h = [0u8; BACKUP_HEADER_BYTES];
    let (magic, created) = h.split_at_mut(BACKUP_MAGIC.len());
    magic.copy_from_slice(BACKUP_MAGIC);
    created.copy_from_slice(&created_ms.to_be_bytes());
    h
}

/// Reads the header: the creation time.
pub fn decode_header(bytes: &[u8]) -> Result<u64> {
    let bytes: &[u8; BACKUP_HEADER_BYTES] =
        bytes.try_into().map_err(|_| malformed(WHAT, "the header is not 24 bytes"))?;
    let (magic, created) = bytes.split_at(BACKUP_MAGIC.len());
    if magic != BACKUP_MAGIC {
        return Err(malformed(WHAT, "not a kluis backup (bad magic)"));
    }
    Ok(u64::from_be_bytes(created.try_into().map_err(|_| malformed(WHAT, "header"))?))
}

/// The message the server signs (§13.3): the label, a zero byte, and the SHA-256 digest of
/// the header and every item up to and including the end item.
pub fn signed_message(digest: &[u8; 32]) -> Vec<u8> {
    [BACKUP_SIGNATURE_LABEL, &[0], digest].concat()
}

impl Item<'_> {
    /// Appends the item's encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let len32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes();
        match self {
            Item::File { name, bytes } => {
                out.push(TAG_FILE);
                out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(&len32(bytes.len()));
                out.extend_from_slice(bytes);
            }
            Item::Tree { store, name } => {
                out.push(TAG_TREE);
                out.push(*store as u8);
                out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
                out.extend_from_slice(name);
            }
            Item::Pair { key, value } => {
                out.push(TAG_PAIR);
                out.extend_from_slice(&len32(key.len()));
                out.extend_from_slice(key);
                out.extend_from_slice(&len32(value.len()));
                out.extend_from_slice(value);
            }
            Item::End { pairs } => {
                out.push(TAG_END);
                out.extend_from_slice(&pairs.to_be_bytes());
            }
            Item::Signature { public_key, signature } => {
                out.push(TAG_SIGNATURE);
                out.extend_from_slice(public_key);
                out.extend_from_slice(signature);
            }
        }
    }
}

/// A cursor over the bytes read so far: `None` means "not there yet", and carries how many
/// bytes in all the item needs up to that point.
struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], usize> {
        let end = self.at.checked_add(n).ok_or(usize::MAX)?;
        let s = self.buf.get(self.at..end).ok_or(end)?;
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self) -> std::result::Result<u8, usize> {
        self.take(1).map(|b| b.first().copied().unwrap_or(0))
    }

    fn u32(&mut self) -> std::result::Result<usize, usize> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes(b.try_into().unwrap_or([0; 4])) as usize)
    }

    fn u64(&mut self) -> std::result::Result<u64, usize> {
        let b = self.take(8)?;
        Ok(u64::from_be_bytes(b.try_into().unwrap_or([0; 8])))
    }
}

fn is_file_name(name: &[u8]) -> bool {
    (1..=MAX_BACKUP_FILE_NAME).contains(&name.len())
        && name.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
}

/// Decodes the item at the start of `buf` (the bytes after the header and earlier items).
/// Lengths are checked against the limits before anything is awaited, so
/// [`Decoded::Incomplete`] never asks for more than the largest item allows.
pub fn decode_item(buf: &[u8]) -> Result<Decoded<'_>> {
    let mut c = Cursor { buf, at: 0 };
    match decode_at(&mut c) {
        Ok(Ok(item)) => Ok(Decoded::Item(item, c.at)),
        Ok(Err(need)) => Ok(Decoded::Incomplete(need)),
        Err(e) => Err(e),
    }
}

/// `Ok(Err(n))`: incomplete, `n` bytes needed in all.
fn decode_at<'a>(c: &mut Cursor<'a>) -> Result<std::result::Result<Item<'a>, usize>> {
    macro_rules! get {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(need) => return Ok(Err(need)),
            }
        };
    }
    let tag = get!(c.u8());
    let item = match tag {
        TAG_FILE => {
            let n = usize::from(get!(c.u8()));
            if !(1..=MAX_BACKUP_FILE_NAME).contains(&n) {
                return Err(malformed(WHAT, "a file name is 1 to 32 of a-z 0-9 . _ -"));
            }
            let name = get!(c.take(n));
            if !is_file_name(name) {
                return Err(malformed(WHAT, "a file name is 1 to 32 of a-z 0-9 . _ -"));
            }
            let len = get!(c.u32());
            if len > MAX_BACKUP_FILE_BYTES {
                return Err(Error::TooLarge { what: "a backup's file item", len, max: MAX_BACKUP_FILE_BYTES });
            }
            let bytes = get!(c.take(len));
            Item::File { name: std::str::from_utf8(name).map_err(|_| malformed(WHAT, "file name"))?, bytes }
        }
        TAG_TREE => {
            let store = StoreKind::from_byte(get!(c.u8()))?;
            let n = usize::from(get!(c.u8()));
            if n == 0 {
                return Err(malformed(WHAT, "a tree name is empty"));
            }
            Item::Tree { store, name: get!(c.take(n)) }
        }
        TAG_PAIR => {
            let len = get!(c.u32());
            if len > MAX_BACKUP_KEY_BYTES {
                return Err(Error::TooLarge { what: "a backup's key", len, max: MAX_BACKUP_KEY_BYTES });
            }
            let key = get!(c.take(len));
            let len = get!(c.u32());
            if len > MAX_BACKUP_VALUE_BYTES {
                return Err(Error::TooLarge { what: "a backup's value", len, max: MAX_BACKUP_VALUE_BYTES });
            }
            Item::Pair { key, value: get!(c.take(len)) }
        }
        TAG_END => Item::End { pairs: get!(c.u64()) },
        TAG_SIGNATURE => {
            let public_key = get!(c.take(BACKUP_PUBLIC_KEY_BYTES));
            let signature = get!(c.take(BACKUP_SIGNATURE_BYTES));
            Item::Signature {
                public_key: public_key.try_into().map_err(|_| malformed(WHAT, "public key"))?,
                signature: signature.try_into().map_err(|_| malformed(WHAT, "signature"))?,
            }
        }
        v => return Err(Error::Unsupported { what: "backup item", value: u64::from(v) }),
    };
    Ok(Ok(item))
}

/// Where a backup is in its canonical order (§13.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Stage {
    /// File items (ascending names) may come.
    #[default]
    Files,
    /// In a tree; whether it has a pair yet.
    Tree { has_pair: bool },
    /// After the end item: only the signature.
    Ended,
    /// After the signature: nothing.
    Signed,
}

/// Checks that items come in the one order a writer produces: files by ascending name, then
/// trees by ascending (store, name), each with at least one pair, pairs by ascending key, the
/// end item with the right count, the signature, and nothing after it.
#[derive(Debug, Clone, Default)]
pub struct Order {
    stage: Stage,
    last_file: Vec<u8>,
    last_tree: Option<(StoreKind, Vec<u8>)>,
    last_key: Option<Vec<u8>>,
    pairs: u64,
}

impl Order {
    /// At the start, after the header.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the signature has been seen (the backup is complete).
    pub fn is_signed(&self) -> bool {
        self.stage == Stage::Signed
    }

    /// Pairs seen so far.
    pub fn pairs(&self) -> u64 {
        self.pairs
    }

    /// Takes the next item, or says why it cannot come here.
    pub fn check(&mut self, item: &Item<'_>) -> Result<()> {
        let out_of_order = |why| Err(malformed(WHAT, why));
        match (item, &self.stage) {
            (Item::File { name, .. }, Stage::Files) => {
                if !self.last_file.is_empty() && name.as_bytes() <= self.last_file.as_slice() {
                    return out_of_order("file items are not in ascending order");
                }
                self.last_file = name.as_bytes().to_vec();
            }
            (Item::Tree { store, name }, Stage::Files | Stage::Tree { has_pair: true }) => {
                let this = (*store, name.to_vec());
                if self.last_tree.as_ref().is_some_and(|last| this <= *last) {
                    return out_of_order("trees are not in ascending order");
                }
                self.last_tree = Some(this);
                self.last_key = None;
                self.stage = Stage::Tree { has_pair: false };
            }
            (Item::Pair { key, .. }, Stage::Tree { .. }) => {
                if self.last_key.as_deref().is_some_and(|last| *key <= last) {
                    return out_of_order("keys are not in ascending order");
                }
                self.last_key = Some(key.to_vec());
                self.pairs = self.pairs.checked_add(1).ok_or(malformed(WHAT, "too many pairs"))?;
                self.stage = Stage::Tree { has_pair: true };
            }
            (Item::End { pairs }, Stage::Files | Stage::Tree { has_pair: true }) => {
                if *pairs != self.pairs {
                    return out_of_order("the end item's count is not the number of pairs");
                }
                self.stage = Stage::Ended;
            }
            (Item::Signature { .. }, Stage::Ended) => self.stage = Stage::Signed,
            (Item::Tree { .. } | Item::End { .. }, Stage::Tree { has_pair: false }) => {
                return out_of_order("a tree has no pairs");
            }
            (_, Stage::Signed) => return out_of_order("bytes after the signature"),
            _ => return out_of_order("an item out of place"),
        }
        Ok(())
    }
}

/// A whole backup's plaintext, decoded at once (tests, fuzzing, small backups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup<'a> {
    /// When it was made.
    pub created_ms: u64,
    /// Every item, the signature last.
    pub items: Vec<Item<'a>>,
    /// SHA-256 of the header and the items up to and including the end item.
    pub digest: [u8; 32],
}

/// Decodes and order-checks a whole plaintext. Does not verify the signature.
pub fn decode(bytes: &[u8]) -> Result<Backup<'_>> {
    use sha2::Digest;
    let header = bytes.get(..BACKUP_HEADER_BYTES).ok_or(malformed(WHAT, "shorter than its header"))?;
    let created_ms = decode_header(header)?;
    let mut hash = sha2::Sha256::new();
    hash.update(header);
    let mut rest = bytes.get(BACKUP_HEADER_BYTES..).unwrap_or_default();
    let mut order = Order::new();
    let mut items = Vec::new();
    while !order.is_signed() {
        let Decoded::Item(item, used) = decode_item(rest)? else {
            return Err(malformed(WHAT, "truncated"));
        };
        order.check(&item)?;
        let (this, after) = rest.split_at(used);
        if !matches!(item, Item::Signature { .. }) {
            hash.update(this);
        }
        items.push(item);
        rest = after;
    }
    if !rest.is_empty() {
        return Err(malformed(WHAT, "bytes after the signature"));
    }
    Ok(Backup { created_ms, items, digest: hash.finalize().into() })
}

impl Backup<'_> {
    /// Encodes it again (the header and every item).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = encode_header(self.created_ms).to_vec();
        for i in &self.items {
            i.encode_into(&mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;

    fn sample() -> Vec<u8> {
        let mut out = encode_header(1_800_000_000_000).to_vec();
        for item in [
            Item::File { name: "server.key", bytes: &[7; 32] },
            Item::File { name: "signing.key", bytes: &[8; 32] },
            Item::Tree { store: StoreKind::Accounts, name: b"users" },
            Item::Pair { key: b"a", value: b"{}" },
            Item::Pair { key: b"b", value: b"" },
            Item::Tree { store: StoreKind::Notes, name: b"heads" },
            Item::Pair { key: &[0; 16], value: &[1; 88] },
            Item::End { pairs: 3 },
            Item::Signature { public_key: [1; 32], signature: [2; 64] },
        ] {
            item.encode_into(&mut out);
        }
        out
    }

    #[test]
    fn a_canonical_backup_decodes_and_encodes_back() {
        let bytes = sample();
        let b = decode(&bytes).unwrap();
        assert_eq!(b.created_ms, 1_800_000_000_000);
        assert_eq!(b.items.len(), 9);
        assert_eq!(b.encode(), bytes);
        // The digest covers everything but the signature item.
        use sha2::Digest;
        let want: [u8; 32] = sha2::Sha256::digest(&bytes[..bytes.len() - 97]).into();
        assert_eq!(b.digest, want);
    }

    #[test]
    fn every_truncation_is_refused_or_incomplete() {
        let bytes = sample();
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "accepted a backup cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
    }

    #[test]
    fn items_out_of_canonical_order_are_refused() {
        let cases: [(&[Item<'_>], &str); 7] = [
            (&[Item::File { name: "b", bytes: b"" }, Item::File { name: "a", bytes: b"" }], "file items"),
            (&[Item::Tree { store: StoreKind::Notes, name: b"a" }, Item::End { pairs: 0 }], "no pairs"),
            (
                &[
                    Item::Tree { store: StoreKind::Notes, name: b"a" },
                    Item::Pair { key: b"k", value: b"" },
                    Item::Tree { store: StoreKind::Accounts, name: b"z" },
                ],
                "trees",
            ),
            (
                &[
                    Item::Tree { store: StoreKind::Notes, name: b"a" },
                    Item::Pair { key: b"k", value: b"" },
                    Item::Pair { key: b"k", value: b"" },
                ],
                "keys",
            ),
            (&[Item::Pair { key: b"k", value: b"" }], "out of place"),
            (&[Item::End { pairs: 1 }], "count"),
            (&[Item::Signature { public_key: [0; 32], signature: [0; 64] }], "out of place"),
        ];
        for (items, why) in cases {
            let mut order = Order::new();
            let err = items.iter().map(|i| order.check(i)).find_map(std::result::Result::err);
            let err = err.unwrap_or_else(|| panic!("accepted {items:?}")).to_string();
            assert!(err.contains(why), "{err} (wanted {why})");
        }
    }

    #[test]
    fn lengths_beyond_the_limits_are_refused_before_reading_on() {
        // A pair that claims a 4 GiB value: refused from its length alone.
        let mut b = vec![TAG_PAIR, 0, 0, 0, 1, b'k'];
        b.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(decode_item(&b), Err(Error::TooLarge { .. })));
        // A value at the limit is only incomplete.
        let mut b = vec![TAG_PAIR, 0, 0, 0, 1, b'k'];
        b.extend_from_slice(&u32::try_from(MAX_BACKUP_VALUE_BYTES).unwrap().to_be_bytes());
        assert_eq!(decode_item(&b).unwrap(), Decoded::Incomplete(b.len() + MAX_BACKUP_VALUE_BYTES));
        assert!(decode_item(&[TAG_FILE, 3, b'A', b'B', b'C']).is_err(), "upper-case file name");
        // A file name longer than 32 bytes: refused from its length, not read first.
        assert!(matches!(decode_item(&[TAG_FILE, 33]), Err(Error::Malformed { .. })), "33-byte name");
        assert!(matches!(decode_item(&[TAG_FILE, 0]), Err(Error::Malformed { .. })), "empty name");
        assert!(decode_item(&[9]).is_err(), "unknown tag");
        assert!(decode_header(b"kluis-backup/v2\n\0\0\0\0\0\0\0\0").is_err());
    }
}

//! The paper backup (FORMAT.md §7): a key file's content as short groups a person can read off
//! a printed page and type back, each group with its own check character, so a typo is reported
//! by position.
//!
//! Payload: `u8 version=1 ‖ u8 kind (1 vault, 2 break-glass) ‖ u64 created ‖ u8 label length ‖
//! label ‖ u8 has-break-glass ‖ [break-glass key 32] ‖ secret 32 ‖ SHA-256(all before)[0..4]`,
//! in RFC 4648 base32 (A–Z, 2–7), cut into groups of four characters (the last padded with `A`),
//! each followed by a check character: the base32 digit of the top 5 bits of
//! SHA-256("kluis/v1/paper-group" ‖ u16 group index ‖ the four characters).

use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};
use crate::escrow::BreakGlassSecret;
use crate::keyfile::{KeyFileKind, UnlockedKeyFile};
use crate::secret::{PublicKey, VaultSecret};
use crate::spec::{KEY_BYTES, LABEL_PAPER_GROUP, PAPER_CHECKSUM_BYTES, PAPER_GROUP_DATA_CHARS, PAPER_VERSION};

const WHAT: &str = "paper backup";
const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// Characters per group: four data characters and a check character.
pub const GROUP_CHARS: usize = PAPER_GROUP_DATA_CHARS + 1;

fn check_char(index: usize, group: &[u8]) -> u8 {
    let idx = u16::try_from(index).unwrap_or(u16::MAX);
    let d =
        Sha256::new().chain_update(LABEL_PAPER_GROUP).chain_update(idx.to_be_bytes()).chain_update(group).finalize();
    let top5 = d.first().map_or(0, |b| b >> 3);
    ALPHABET.get(usize::from(top5)).copied().unwrap_or(b'A')
}

fn checksum(p: &[u8]) -> [u8; PAPER_CHECKSUM_BYTES] {
    let d = Sha256::digest(p);
    let mut out = [0u8; PAPER_CHECKSUM_BYTES];
    out.iter_mut().zip(d.iter()).for_each(|(o, i)| *o = *i);
    out
}

/// The groups of a key file, each [`GROUP_CHARS`] characters.
pub fn encode(file: &UnlockedKeyFile) -> Zeroizing<Vec<String>> {
    let info = file.info();
    let mut p = Zeroizing::new(Vec::with_capacity(160));
    p.push(PAPER_VERSION);
    p.push(match info.kind {
        KeyFileKind::Vault => 1,
        KeyFileKind::BreakGlass => 2,
    });
    p.extend_from_slice(&info.created.to_be_bytes());
    let label = info.label.as_bytes();
    // Labels are at most MAX_LABEL_BYTES (255) bytes long: checked when the file was made.
    p.push(u8::try_from(label.len()).unwrap_or(u8::MAX));
    p.extend_from_slice(label);
    match &info.break_glass {
        Some(bg) => {
            p.push(1);
            p.extend_from_slice(&bg.0);
        }
        None => p.push(0),
    }
    p.extend_from_slice(file.secret().expose());
    let sum = checksum(&p);
    p.extend_from_slice(&sum);
    let text = Zeroizing::new(data_encoding::BASE32_NOPAD.encode(&p));
    let mut groups = Zeroizing::new(Vec::new());
    for (i, chunk) in text.as_bytes().chunks(PAPER_GROUP_DATA_CHARS).enumerate() {
        let mut g = Zeroizing::new(chunk.to_vec());
        g.resize(PAPER_GROUP_DATA_CHARS, b'A');
        let c = check_char(i, &g);
        g.push(c);
        groups.push(String::from_utf8_lossy(&g).into_owned());
    }
    groups
}

/// Parses typed groups back into a key file. Accepts any case, white space and dashes between
/// characters, and a row number (`12.`) at the start of a line. A group whose check character
/// does not match is [`Error::PaperTypo`] with its 1-based index.
pub fn decode(text: &str) -> Result<UnlockedKeyFile> {
    let mut chars = Zeroizing::new(Vec::with_capacity(text.len()));
    for line in text.lines() {
        let line = line.trim_start();
        let line = match line.split_once('.') {
            Some((n, rest)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => rest,
            _ => line,
        };
        chars.extend(line.bytes().filter(|b| !b.is_ascii_whitespace() && *b != b'-').map(|b| b.to_ascii_uppercase()));
    }
    if chars.is_empty() || chars.len() % GROUP_CHARS != 0 {
        return Err(Error::Malformed { what: WHAT, reason: "not a whole number of 5-character groups" });
    }
    let mut data = Zeroizing::new(Vec::with_capacity(chars.len()));
    for (i, g) in chars.chunks(GROUP_CHARS).enumerate() {
        let (d, c) = g.split_at(PAPER_GROUP_DATA_CHARS);
        if g.iter().any(|b| !ALPHABET.contains(b)) || c != [check_char(i, d)] {
            return Err(Error::PaperTypo { group: i + 1 });
        }
        data.extend_from_slice(d);
    }
    // The payload's length is unknown until parsed: try the lengths the last group's padding
    // allows, and take the one whose checksum holds.
    for cut in 0..PAPER_GROUP_DATA_CHARS {
        let Some(prefix) = data.get(..data.len().saturating_sub(cut)) else { continue };
        let Ok(bytes) = data_encoding::BASE32_NOPAD.decode(prefix) else { continue };
        let bytes = Zeroizing::new(bytes);
        if let Some((body, sum)) = bytes.split_last_chunk::<PAPER_CHECKSUM_BYTES>() {
            if !body.is_empty() && checksum(body) == *sum {
                return parse_payload(body);
            }
        }
    }
    Err(Error::PaperChecksum)
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(Error::Malformed { what: WHAT, reason: "truncated" });
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn byte(&mut self) -> Result<u8> {
        self.take(1).map(|b| b.first().copied().unwrap_or(0))
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.take(N).and_then(|b| b.try_into().map_err(|_| Error::Malformed { what: WHAT, reason: "truncated" }))
    }
}

fn parse_payload(p: &[u8]) -> Result<UnlockedKeyFile> {
    let mut c = Cursor(p);
    let version = c.byte()?;
    if version != PAPER_VERSION {
        return Err(Error::Unsupported { what: "paper backup version", value: u64::from(version) });
    }
    let kind = c.byte()?;
    let created = u64::from_be_bytes(c.array()?);
    let len = usize::from(c.byte()?);
    let label = core::str::from_utf8(c.take(len)?)
        .map_err(|_| Error::Malformed { what: WHAT, reason: "label is not UTF-8" })?;
    let break_glass = match c.byte()? {
        0 => None,
        1 => Some(PublicKey(c.array()?)),
        _ => return Err(Error::Malformed { what: WHAT, reason: "bad break-glass flag" }),
    };
    let mut secret: [u8; KEY_BYTES] = c.array()?;
    if !c.0.is_empty() {
        secret.zeroize();
        return Err(Error::Malformed { what: WHAT, reason: "trailing bytes" });
    }
    let file = match (kind, break_glass) {
        (1, bg) => UnlockedKeyFile::new(VaultSecret::from_bytes(secret), label, created, bg),
        (2, None) => UnlockedKeyFile::new_break_glass(&BreakGlassSecret::from_bytes(secret), label, created),
        _ => Err(Error::Malformed { what: WHAT, reason: "unknown key kind" }),
    };
    secret.zeroize();
    file
}

//! Reading and writing the key-file text (FORMAT.md §6.1, §6.2).

use bech32::primitives::decode::CheckedHrpstring;
use bech32::{Bech32, Hrp};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::{Zeroize, Zeroizing};

use super::protect::Protected;
use super::{KeyFile, KeyFileInfo, KeyFileKind, SecretLine, check_label};
use crate::error::{Error, Result};
use crate::secret::{PublicKey, VaultSecret};
use crate::spec::{HASH_BYTES, HRP_BREAK_GLASS, HRP_PROTECTED, HRP_PUBLIC, KEY_BYTES, MAX_KEY_FILE_BYTES};

const CREATED: &str = "# created: ";
const LABEL: &str = "# label: ";
const PUBLIC: &str = "# public key: ";
const FINGERPRINT: &str = "# fingerprint: ";
const BREAK_GLASS: &str = "# break-glass key: ";
const MAC: &str = "# mac: ";
/// UTF-8 byte-order mark, which Windows editors may add (accepted, never written).
const BOM: &str = "\u{feff}";

fn syntax(line: usize, reason: &'static str) -> Error {
    Error::KeyFileSyntax { line, reason }
}

fn hrp(s: &str) -> Result<Hrp> {
    Hrp::parse(s).map_err(|_| Error::InvalidArgument("bech32 prefix"))
}

/// Bech32 of `data` under `prefix`, upper-case for secret lines, lower-case for public keys.
fn bech32_encode(prefix: &str, data: &[u8], upper: bool) -> Result<String> {
    let h = hrp(prefix)?;
    let s = if upper { bech32::encode_upper::<Bech32>(h, data) } else { bech32::encode_lower::<Bech32>(h, data) };
    s.map_err(|_| Error::InvalidArgument("bech32 encoding"))
}

/// Decodes Bech32 strictly: the expected prefix and case, a valid checksum, and canonical form
/// (re-encoding gives back exactly the input).
fn bech32_decode(s: &str, prefix: &str, upper: bool, line: usize) -> Result<Zeroizing<Vec<u8>>> {
    let wrong_case =
        if upper { s.bytes().any(|b| b.is_ascii_lowercase()) } else { s.bytes().any(|b| b.is_ascii_uppercase()) };
    if wrong_case {
        return Err(syntax(
            line,
            if upper { "the key line must be upper-case" } else { "a public key must be lower-case" },
        ));
    }
    let expected_start = format!("{}1", if upper { prefix.to_ascii_uppercase() } else { prefix.to_owned() });
    if !s.starts_with(&expected_start) {
        return Err(syntax(line, "unexpected key prefix"));
    }
    let checked = CheckedHrpstring::new::<Bech32>(s).map_err(|_| Error::BadChecksum)?;
    let data = Zeroizing::new(checked.byte_iter().collect::<Vec<u8>>());
    let mut again = bech32_encode(prefix, &data, upper)?;
    let canonical = again == s;
    again.zeroize();
    if !canonical {
        return Err(syntax(line, "non-canonical key encoding"));
    }
    Ok(data)
}

fn public_key_from(s: &str, prefix: &str, line: usize) -> Result<PublicKey> {
    let data = bech32_decode(s, prefix, false, line)?;
    let arr = <[u8; KEY_BYTES]>::try_from(data.as_slice()).map_err(|_| syntax(line, "a public key has 32 bytes"))?;
    Ok(PublicKey(arr))
}

/// A vault public key as written in a key file: `kluispub1…` (FORMAT.md §6.2).
pub fn public_key_text(pk: &PublicKey) -> Result<String> {
    bech32_encode(HRP_PUBLIC, &pk.0, false)
}

/// The public-key line's value of a key file of `kind`: `kluispub1…` or `kluisbg1…`.
pub(crate) fn public_key_text_of(kind: KeyFileKind, pk: &PublicKey) -> Result<String> {
    bech32_encode(kind.public_hrp(), &pk.0, false)
}

/// A break-glass public key as written in key files: `kluisbg1…` (FORMAT.md §6.2).
pub fn break_glass_text(pk: &PublicKey) -> Result<String> {
    bech32_encode(HRP_BREAK_GLASS, &pk.0, false)
}

fn timestamp_text(created: u64) -> Result<String> {
    let secs = i64::try_from(created).map_err(|_| Error::InvalidArgument("creation time out of range"))?;
    let t =
        OffsetDateTime::from_unix_timestamp(secs).map_err(|_| Error::InvalidArgument("creation time out of range"))?;
    t.format(&Rfc3339).map_err(|_| Error::InvalidArgument("creation time out of range"))
}

fn parse_timestamp(s: &str, line: usize) -> Result<u64> {
    let bad = || syntax(line, "the creation time must be RFC 3339 UTC, like 2026-11-24T09:30:00Z");
    let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| bad())?;
    let secs = u64::try_from(t.unix_timestamp()).map_err(|_| bad())?;
    // Canonical: exactly the form we write (UTC `Z`, no fraction).
    if timestamp_text(secs)? != s {
        return Err(bad());
    }
    Ok(secs)
}

pub(crate) fn write(info: &KeyFileInfo, secret: &SecretLine, mac: &[u8; HASH_BYTES]) -> Result<Zeroizing<String>> {
    check_label(&info.label)?;
    let mut out = Zeroizing::new(String::with_capacity(640));
    let mut line = |prefix: &str, value: &str| {
        out.push_str(prefix);
        out.push_str(value);
        out.push('\n');
    };
    line(info.kind.magic(), "");
    line(CREATED, &timestamp_text(info.created)?);
    line(LABEL, &info.label);
    line(PUBLIC, &info.public_key_text()?);
    line(FINGERPRINT, &info.public.fingerprint().to_string());
    if let Some(bg) = &info.break_glass {
        line(BREAK_GLASS, &break_glass_text(bg)?);
    }
    line(MAC, &data_encoding::HEXLOWER.encode(mac));
    let secret_text = Zeroizing::new(match secret {
        SecretLine::Plain(s) => bech32_encode(info.kind.secret_hrp(), s.expose(), true)?,
        SecretLine::Protected(p) => bech32_encode(HRP_PROTECTED, &p.to_bytes(), true)?,
    });
    line(&secret_text, "");
    Ok(out)
}

/// Splits into lines: an optional BOM, then lines all ending in LF or all in CRLF.
fn lines(text: &str) -> Result<Vec<&str>> {
    let text = text.strip_prefix(BOM).unwrap_or(text);
    let crlf = text.contains("\r\n");
    let body = text
        .strip_suffix(if crlf { "\r\n" } else { "\n" })
        .ok_or_else(|| syntax(0, "the file must end with a line break"))?;
    let sep = if crlf { "\r\n" } else { "\n" };
    let lines: Vec<&str> = body.split(sep).collect();
    for (i, l) in lines.iter().enumerate() {
        if l.contains('\r') || l.contains('\n') {
            return Err(syntax(i + 1, "mixed line endings"));
        }
    }
    Ok(lines)
}

fn field<'a>(lines: &[&'a str], at: &mut usize, prefix: &str, reason: &'static str) -> Result<&'a str> {
    let line = *at + 1;
    let l = lines.get(*at).ok_or_else(|| syntax(line, "the file is truncated"))?;
    let v = l.strip_prefix(prefix).ok_or_else(|| syntax(line, reason))?;
    *at += 1;
    Ok(v)
}

pub(crate) fn parse(bytes: &[u8]) -> Result<KeyFile> {
    if bytes.len() > MAX_KEY_FILE_BYTES {
        return Err(Error::TooLarge { what: "key file", len: bytes.len(), max: MAX_KEY_FILE_BYTES });
    }
    let text = core::str::from_utf8(bytes).map_err(|_| syntax(0, "not UTF-8 text"))?;
    let lines = lines(text)?;
    let kind = match lines.first() {
        Some(l) if *l == KeyFileKind::Vault.magic() => KeyFileKind::Vault,
        Some(l) if *l == KeyFileKind::BreakGlass.magic() => KeyFileKind::BreakGlass,
        _ => return Err(syntax(1, "not a kluis key file of a version this program reads (first line)")),
    };
    let mut at = 1;
    let created = parse_timestamp(field(&lines, &mut at, CREATED, "expected '# created: '")?, at)?;
    let label = field(&lines, &mut at, LABEL, "expected '# label: '")?;
    check_label(label).map_err(|_| {
        syntax(at, "a label has 1 to 64 characters (at most 255 bytes), no control characters, no outer spaces")
    })?;
    let public = public_key_from(field(&lines, &mut at, PUBLIC, "expected '# public key: '")?, kind.public_hrp(), at)?;
    let fp = field(&lines, &mut at, FINGERPRINT, "expected '# fingerprint: '")?;
    if fp != public.fingerprint().to_string() {
        return Err(syntax(at, "the fingerprint does not match the public key"));
    }
    let break_glass = match lines.get(at).and_then(|l| l.strip_prefix(BREAK_GLASS)) {
        Some(_) if kind == KeyFileKind::BreakGlass => {
            return Err(syntax(at + 1, "a break-glass key file carries no break-glass key line"));
        }
        Some(v) => {
            at += 1;
            Some(public_key_from(v, HRP_BREAK_GLASS, at)?)
        }
        None => None,
    };
    let mac_hex = field(&lines, &mut at, MAC, "expected '# mac: '")?;
    let mac_vec = data_encoding::HEXLOWER
        .decode(mac_hex.as_bytes())
        .map_err(|_| syntax(at, "the MAC is 64 lower-case hex digits"))?;
    let mac = <[u8; HASH_BYTES]>::try_from(mac_vec.as_slice())
        .map_err(|_| syntax(at, "the MAC is 64 lower-case hex digits"))?;
    let secret_line = *lines.get(at).ok_or_else(|| syntax(at + 1, "the secret line is missing"))?;
    at += 1;
    let secret = if secret_line.to_ascii_lowercase().starts_with(&format!("{HRP_PROTECTED}1")) {
        let data = bech32_decode(secret_line, HRP_PROTECTED, true, at)?;
        SecretLine::Protected(Protected::from_bytes(&data).map_err(|e| match e {
            Error::KeyFileSyntax { reason, .. } => syntax(at, reason),
            other => other,
        })?)
    } else {
        let data = bech32_decode(secret_line, kind.secret_hrp(), true, at)?;
        let mut arr = [0u8; KEY_BYTES];
        if data.len() != KEY_BYTES {
            return Err(syntax(at, "the secret has 32 bytes"));
        }
        arr.copy_from_slice(&data);
        let s = VaultSecret::from_bytes(arr);
        arr.zeroize();
        SecretLine::Plain(s)
    };
    if at != lines.len() {
        return Err(syntax(at + 1, "unexpected text after the secret line"));
    }
    Ok(KeyFile { info: KeyFileInfo { kind, created, label: label.to_owned(), public, break_glass }, secret, mac })
}

/// Parses a public key as written in a key file (`kluispub1…` or `kluisbg1…`).
pub fn parse_public_key(s: &str) -> Result<PublicKey> {
    let s = s.trim();
    let prefix = if s.starts_with(&format!("{HRP_BREAK_GLASS}1")) { HRP_BREAK_GLASS } else { HRP_PUBLIC };
    public_key_from(s, prefix, 0)
}

//! Strict, canonical CBOR (RFC 8949 §4.2.1 "core deterministic encoding") for the small subset
//! kluis uses: unsigned integers, byte strings, definite arrays and maps with unsigned keys in
//! ascending order, and `null`.
//!
//! Decoding uses `minicbor`'s borrowing decoder, so no declared length can make us allocate:
//! a byte string is a slice of the input. On top of it, every head is checked to be minimal
//! (`minicbor` accepts `0x18 0x05` for 5; we do not), indefinite lengths are refused, map keys
//! must be exactly the expected ones in order (so duplicates and unknown keys are errors), and
//! the input must end exactly where the object ends.
//!
//! Encoding writes minimal heads by construction, so `encode(decode(b)) == b` for every accepted
//! `b` (a property test checks it).

use crate::error::{Error, Result, malformed};

const MAJOR_UINT: u8 = 0;
const MAJOR_BYTES: u8 = 2;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
/// `null`, major type 7, simple value 22.
const NULL: u8 = 0xf6;

/// Length in bytes of the minimal head for an argument `n`.
fn head_len(n: u64) -> usize {
    match n {
        0..=23 => 1,
        24..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// Appends canonical CBOR to a buffer.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    pub(crate) out: Vec<u8>,
}

impl Writer {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Writer { out: Vec::with_capacity(n) }
    }

    fn head(&mut self, major: u8, n: u64) {
        let m = major << 5;
        // Each arm writes the minimal form (RFC 8949 §4.2.1); the casts are range-checked by the match.
        #[allow(clippy::cast_possible_truncation)]
        match n {
            0..=23 => self.out.push(m | n as u8),
            24..=0xff => self.out.extend_from_slice(&[m | 24, n as u8]),
            0x100..=0xffff => {
                self.out.push(m | 25);
                self.out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                self.out.push(m | 26);
                self.out.extend_from_slice(&(n as u32).to_be_bytes());
            }
            _ => {
                self.out.push(m | 27);
                self.out.extend_from_slice(&n.to_be_bytes());
            }
        }
    }

    pub(crate) fn uint(&mut self, n: u64) -> &mut Self {
        self.head(MAJOR_UINT, n);
        self
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.bytes_head(b.len());
        self.out.extend_from_slice(b);
        self
    }

    /// Writes only the head of a byte string of `len` bytes; the caller appends the bytes.
    pub(crate) fn bytes_head(&mut self, len: usize) -> &mut Self {
        self.head(MAJOR_BYTES, len as u64);
        self
    }

    pub(crate) fn array(&mut self, len: usize) -> &mut Self {
        self.head(MAJOR_ARRAY, len as u64);
        self
    }

    pub(crate) fn map(&mut self, len: usize) -> &mut Self {
        self.head(MAJOR_MAP, len as u64);
        self
    }

    pub(crate) fn null(&mut self) -> &mut Self {
        self.out.push(NULL);
        self
    }

    /// Writes map key `k` (an unsigned integer).
    pub(crate) fn key(&mut self, k: u64) -> &mut Self {
        self.uint(k)
    }
}

/// Reads canonical CBOR from a byte slice, naming the object in its errors.
#[derive(Debug)]
pub(crate) struct Reader<'b> {
    d: minicbor::Decoder<'b>,
    what: &'static str,
}

impl<'b> Reader<'b> {
    pub(crate) fn new(input: &'b [u8], what: &'static str) -> Self {
        Reader { d: minicbor::Decoder::new(input), what }
    }

    fn err(&self, reason: &'static str) -> Error {
        malformed(self.what, reason)
    }

    fn check_minimal(&self, start: usize, n: u64, payload: usize) -> Result<()> {
        let used = self.d.position() - start - payload;
        if used == head_len(n) { Ok(()) } else { Err(self.err("non-canonical integer or length encoding")) }
    }

    fn first_byte(&self) -> Result<u8> {
        self.d.input().get(self.d.position()).copied().ok_or_else(|| self.err("truncated"))
    }

    fn expect_major(&self, major: u8, reason: &'static str) -> Result<()> {
        let b = self.first_byte()?;
        if b >> 5 != major {
            return Err(self.err(reason));
        }
        if b & 0x1f == 31 {
            return Err(self.err("indefinite length is not canonical"));
        }
        if b & 0x1f > 27 {
            return Err(self.err("reserved additional information"));
        }
        Ok(())
    }

    pub(crate) fn uint(&mut self) -> Result<u64> {
        self.expect_major(MAJOR_UINT, "expected an unsigned integer")?;
        let start = self.d.position();
        let n = self.d.u64().map_err(|_| self.err("truncated"))?;
        self.check_minimal(start, n, 0)?;
        Ok(n)
    }

    pub(crate) fn bytes(&mut self) -> Result<&'b [u8]> {
        self.expect_major(MAJOR_BYTES, "expected a byte string")?;
        let start = self.d.position();
        let b = self.d.bytes().map_err(|_| self.err("truncated"))?;
        self.check_minimal(start, b.len() as u64, b.len())?;
        Ok(b)
    }

    pub(crate) fn bytes_exact<const N: usize>(&mut self, reason: &'static str) -> Result<[u8; N]> {
        let b = self.bytes()?;
        <[u8; N]>::try_from(b).map_err(|_| self.err(reason))
    }

    fn container(&mut self, major: u8, reason: &'static str) -> Result<u64> {
        self.expect_major(major, reason)?;
        let start = self.d.position();
        let n = if major == MAJOR_MAP { self.d.map() } else { self.d.array() }
            .map_err(|_| self.err("truncated"))?
            .ok_or_else(|| self.err("indefinite length is not canonical"))?;
        self.check_minimal(start, n, 0)?;
        Ok(n)
    }

    /// Reads an array head and returns its length, refusing more than `max` elements.
    pub(crate) fn array(&mut self, max: u64) -> Result<u64> {
        let n = self.container(MAJOR_ARRAY, "expected an array")?;
        // Every element takes at least one byte: refuse lengths the input cannot hold before
        // anyone allocates for them.
        let remaining = (self.d.input().len() - self.d.position()) as u64;
        if n > max || n > remaining {
            return Err(self.err("too many elements"));
        }
        Ok(n)
    }

    /// Reads a map head whose length must be exactly `len`.
    pub(crate) fn map_exact(&mut self, len: u64) -> Result<()> {
        let n = self.container(MAJOR_MAP, "expected a map")?;
        if n == len { Ok(()) } else { Err(self.err("wrong number of fields")) }
    }

    /// Reads a map key, which must be exactly `k` (canonical order, no duplicates, no unknown keys).
    pub(crate) fn key(&mut self, k: u64) -> Result<()> {
        let got = self.uint().map_err(|_| self.err("expected an integer field key"))?;
        if got == k { Ok(()) } else { Err(self.err("unexpected, duplicate or out-of-order field")) }
    }

    /// True (and consumed) when the next item is `null`.
    pub(crate) fn null_or(&mut self) -> Result<bool> {
        if self.first_byte()? == NULL {
            self.d.set_position(self.d.position() + 1);
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// The whole input was one object: no trailing bytes.
    pub(crate) fn finish(self) -> Result<()> {
        if self.d.position() == self.d.input().len() { Ok(()) } else { Err(self.err("trailing bytes")) }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn non_minimal_integer_is_refused() {
        assert_eq!(Reader::new(&[0x05], "t").uint().unwrap(), 5);
        assert!(Reader::new(&[0x18, 0x05], "t").uint().is_err());
        assert!(Reader::new(&[0x19, 0x00, 0x05], "t").uint().is_err());
        assert_eq!(Reader::new(&[0x18, 0x18], "t").uint().unwrap(), 24);
    }

    #[test]
    fn non_minimal_length_and_indefinite_are_refused() {
        assert!(Reader::new(&[0x58, 0x01, 0xaa], "t").bytes().is_err());
        assert_eq!(Reader::new(&[0x41, 0xaa], "t").bytes().unwrap(), &[0xaa]);
        assert!(Reader::new(&[0x5f, 0x41, 0xaa, 0xff], "t").bytes().is_err());
        assert!(Reader::new(&[0xbf, 0xff], "t").map_exact(0).is_err());
    }

    #[test]
    fn lengths_beyond_input_are_refused_without_allocating() {
        assert!(Reader::new(&[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], "t").bytes().is_err());
        assert!(Reader::new(&[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], "t").array(u64::MAX).is_err());
    }

    #[test]
    fn writer_round_trips_through_reader() {
        for n in [0u64, 23, 24, 255, 256, 65535, 65536, u32::MAX as u64, u32::MAX as u64 + 1, u64::MAX] {
            let mut w = Writer::default();
            w.uint(n);
            assert_eq!(w.out.len(), head_len(n));
            let mut r = Reader::new(&w.out, "t");
            assert_eq!(r.uint().unwrap(), n);
            r.finish().unwrap();
        }
    }
}

//! The primitives of the persisted state's wire format, read and written in place.
//!
//! The persisted form of a customer ([`crate::state`]) is the postcard encoding of the
//! `Persisted` description in that module: unsigned integers as LEB128 varints (at most 5 bytes
//! for a `u32`, 10 for a `u64`, the last byte holding no bits beyond the type), signed ones
//! zigzag-encoded first, `u8` as one raw byte, `bool` as one byte 0 or 1, strings and lists as
//! their length (a varint) followed by the bytes or elements, tuples and structs as their fields
//! in order, enum variants as their index (a varint) followed by their fields. Reading and
//! writing those primitives directly from and into the customer record (rather than through an
//! intermediate value with owned strings) is what makes a restore cheap; the tests of
//! `engine::persist` check, against postcard itself, that both directions stay the same format.

use crate::StateError;

/// Reads the wire primitives from a byte slice, borrowing strings from it.
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
}

fn short() -> StateError {
    StateError("value ends early".into())
}

fn bad_varint() -> StateError {
    StateError("bad varint".into())
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    #[inline]
    pub(super) fn byte(&mut self) -> Result<u8, StateError> {
        let (&b, rest) = self.bytes.split_first().ok_or_else(short)?;
        self.bytes = rest;
        Ok(b)
    }

    #[inline]
    pub(super) fn bool(&mut self) -> Result<bool, StateError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(StateError("bad bool".into())),
        }
    }

    /// A varint of at most `max_bytes` bytes whose last byte is at most `last_max`.
    #[inline]
    fn varint(&mut self, max_bytes: u32, last_max: u8) -> Result<u64, StateError> {
        let mut out = 0u64;
        for i in 0..max_bytes {
            let b = self.byte()?;
            out |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if i == max_bytes - 1 && b > last_max {
                    return Err(bad_varint());
                }
                return Ok(out);
            }
        }
        Err(bad_varint())
    }

    #[inline]
    pub(super) fn u64(&mut self) -> Result<u64, StateError> {
        // Fast path: one byte.
        if let Some((&b, rest)) = self.bytes.split_first() {
            if b & 0x80 == 0 {
                self.bytes = rest;
                return Ok(u64::from(b));
            }
        }
        self.varint(10, 0x01)
    }

    #[inline]
    pub(super) fn u32(&mut self) -> Result<u32, StateError> {
        Ok(self.varint(5, 0x0f)? as u32)
    }

    #[inline]
    pub(super) fn i64(&mut self) -> Result<i64, StateError> {
        let n = self.u64()?;
        Ok(((n >> 1) as i64) ^ -((n & 1) as i64))
    }

    /// A length (of a string or a list), checked against the bytes left so that a corrupt
    /// length cannot make the caller reserve a huge allocation: every element takes at least
    /// one byte.
    #[inline]
    pub(super) fn len(&mut self) -> Result<usize, StateError> {
        let n = self.u64()?;
        if n > self.bytes.len() as u64 {
            return Err(short());
        }
        Ok(n as usize)
    }

    #[inline]
    pub(super) fn str(&mut self) -> Result<&'a str, StateError> {
        let n = self.len()?;
        let (s, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        std::str::from_utf8(s).map_err(|_| StateError("string is not UTF-8".into()))
    }

    /// A timestamp: (seconds as i64, nanoseconds as u32).
    #[inline]
    pub(super) fn time(&mut self) -> Result<(i64, u32), StateError> {
        Ok((self.i64()?, self.u32()?))
    }
}

/// Writes the wire primitives at the end of a byte vector.
pub(super) struct Writer<'a> {
    pub(super) out: &'a mut Vec<u8>,
}

impl Writer<'_> {
    #[inline]
    pub(super) fn byte(&mut self, b: u8) {
        self.out.push(b);
    }

    #[inline]
    pub(super) fn bool(&mut self, b: bool) {
        self.out.push(b as u8);
    }

    #[inline]
    pub(super) fn u64(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.out.push((n as u8) | 0x80);
            n >>= 7;
        }
        self.out.push(n as u8);
    }

    #[inline]
    pub(super) fn i64(&mut self, n: i64) {
        self.u64(((n << 1) ^ (n >> 63)) as u64);
    }

    #[inline]
    pub(super) fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }

    #[inline]
    pub(super) fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    /// A string given as its UTF-8 bytes.
    #[inline]
    pub(super) fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.out.extend_from_slice(b);
    }

    #[inline]
    pub(super) fn time(&mut self, (secs, nanos): (i64, u32)) {
        self.i64(secs);
        self.u64(u64::from(nanos));
    }
}

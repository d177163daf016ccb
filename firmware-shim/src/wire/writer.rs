//! A bounded byte writer over a caller-provided slice, used by every encoder in this crate.
//!
//! It must never allocate or panic: writing past the end returns [`BufferFull`].

use core::fmt;

/// The output buffer was too small for the encoded bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferFull;

impl fmt::Display for BufferFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("output buffer too small")
    }
}

impl core::error::Error for BufferFull {}

/// Appends bytes to a fixed slice and remembers how much was written.
#[derive(Debug)]
pub struct ByteWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> ByteWriter<'a> {
    /// Starts writing at the beginning of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// Appends one byte.
    pub fn push(&mut self, byte: u8) -> Result<(), BufferFull> {
        let slot = self.buf.get_mut(self.len).ok_or(BufferFull)?;
        *slot = byte;
        self.len += 1;
        Ok(())
    }

    /// Appends all of `bytes`, or nothing if they do not fit.
    pub fn extend(&mut self, bytes: &[u8]) -> Result<(), BufferFull> {
        let end = self.len.checked_add(bytes.len()).ok_or(BufferFull)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(BufferFull)?;
        dst.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    /// Appends `n` copies of `byte`.
    pub fn fill(&mut self, byte: u8, n: usize) -> Result<(), BufferFull> {
        for _ in 0..n {
            self.push(byte)?;
        }
        Ok(())
    }

    /// Appends an unsigned integer in decimal, left-padded with zeros to `min_digits`.
    pub fn push_u64(&mut self, value: u64, min_digits: usize) -> Result<(), BufferFull> {
        let mut digits = [0u8; 20];
        let mut n = 0;
        let mut v = value;
        loop {
            digits[n] = b'0' + (v % 10) as u8;
            n += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        while n < min_digits.min(digits.len()) {
            digits[n] = b'0';
            n += 1;
        }
        for i in (0..n).rev() {
            self.push(digits[i])?;
        }
        Ok(())
    }

    /// Number of bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes written so far.
    pub fn written(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Gives back the written part of the buffer with the writer's lifetime.
    pub fn into_written(self) -> &'a [u8] {
        let ByteWriter { buf, len } = self;
        &buf[..len]
    }
}

impl fmt::Write for ByteWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.extend(s.as_bytes()).map_err(|_| fmt::Error)
    }
}

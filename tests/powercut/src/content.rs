//! The bytes of one file, kept as 4 KiB blocks shared copy-on-write between the durable image
//! and the live view, so that making a file durable copies pointers, not data.
//!
//! A missing block reads as zeros (a hole). Invariant: bytes of the last block beyond `len` are
//! zero, and no block lies wholly beyond `len`; every method keeps it. This module knows nothing
//! of durability: it is a plain sparse byte array.

use std::collections::BTreeMap;
use std::sync::Arc;

/// Size of a block: the unit of copy-on-write, of durability and of a torn write.
pub const BLOCK_SIZE: u64 = 4096;

/// One block of data.
pub(crate) type Block = [u8; BLOCK_SIZE as usize];

/// A sparse file body: its length and the blocks that are not holes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Content {
    len: u64,
    blocks: BTreeMap<u64, Arc<Block>>,
}

/// Block index holding byte `offset`.
pub(crate) fn block_of(offset: u64) -> u64 {
    offset / BLOCK_SIZE
}

/// Number of blocks needed to hold `len` bytes.
pub(crate) fn blocks_for(len: u64) -> u64 {
    len.div_ceil(BLOCK_SIZE)
}

impl Content {
    /// Length in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Blocks that hold data (holes excluded), for `st_blocks`.
    pub(crate) fn allocated_blocks(&self) -> u64 {
        self.blocks.len() as u64
    }

    /// Reads up to `size` bytes at `offset`; short at the end of the file, empty past it.
    pub(crate) fn read(&self, offset: u64, size: u64) -> Vec<u8> {
        if offset >= self.len {
            return Vec::new();
        }
        let end = self.len.min(offset.saturating_add(size));
        let mut out = vec![0u8; (end - offset) as usize];
        if out.is_empty() {
            return out;
        }
        for (&index, block) in self.blocks.range(block_of(offset)..=block_of(end - 1)) {
            let block_start = index * BLOCK_SIZE;
            let from = offset.max(block_start);
            let to = end.min(block_start + BLOCK_SIZE);
            out[(from - offset) as usize..(to - offset) as usize].copy_from_slice(
                &block[(from - block_start) as usize..(to - block_start) as usize],
            );
        }
        out
    }

    /// Writes `data` at `offset`, growing the file if needed.
    pub(crate) fn write(&mut self, offset: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let end = offset + data.len() as u64;
        for index in block_of(offset)..=block_of(end - 1) {
            let block_start = index * BLOCK_SIZE;
            let from = offset.max(block_start);
            let to = end.min(block_start + BLOCK_SIZE);
            let slot = self
                .blocks
                .entry(index)
                .or_insert_with(|| Arc::new([0u8; BLOCK_SIZE as usize]));
            Arc::make_mut(slot)[(from - block_start) as usize..(to - block_start) as usize]
                .copy_from_slice(&data[(from - offset) as usize..(to - offset) as usize]);
        }
        self.len = self.len.max(end);
    }

    /// Sets the length: shrinking drops whole blocks past the end and zeroes the tail of the
    /// last one; growing adds a hole.
    pub(crate) fn set_len(&mut self, len: u64) {
        if len < self.len {
            self.blocks.split_off(&blocks_for(len));
            let tail = len % BLOCK_SIZE;
            if tail != 0
                && let Some(block) = self.blocks.get_mut(&block_of(len))
            {
                Arc::make_mut(block)[tail as usize..].fill(0);
            }
        }
        self.len = len;
    }

    /// Copies block `index` from `other` (a hole stays a hole), for blocks inside `self.len`.
    pub(crate) fn copy_block_from(&mut self, other: &Content, index: u64) {
        match other.blocks.get(&index) {
            Some(block) => {
                self.blocks.insert(index, Arc::clone(block));
            }
            None => {
                self.blocks.remove(&index);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_writes_across_blocks_and_holes_read_as_zero() {
        let mut c = Content::default();
        c.write(4090, b"0123456789");
        assert_eq!(c.len(), 4100);
        assert_eq!(c.read(4090, 10), b"0123456789");
        assert_eq!(c.read(0, 4), [0, 0, 0, 0]);
        assert_eq!(c.read(4095, 100), b"56789");
        assert!(c.read(4100, 1).is_empty());
        c.write(3 * BLOCK_SIZE, b"x");
        assert_eq!(c.allocated_blocks(), 3);
        assert_eq!(c.read(2 * BLOCK_SIZE, 2), [0, 0]);
    }

    #[test]
    fn shrinking_zeroes_the_tail_so_growing_again_reads_zeros() {
        let mut c = Content::default();
        c.write(0, &[7u8; 10_000]);
        c.set_len(5000);
        assert_eq!(c.allocated_blocks(), 2);
        c.set_len(10_000);
        assert_eq!(c.read(4990, 20), [[7u8; 10], [0u8; 10]].concat());
        assert_eq!(c.read(9000, 1000), vec![0u8; 1000]);
    }

    #[test]
    fn clones_share_blocks_until_written() {
        let mut live = Content::default();
        live.write(0, &[1u8; 8192]);
        let durable = live.clone();
        live.write(10, b"changed");
        assert_eq!(durable.read(10, 7), [1u8; 7]);
        assert_eq!(live.read(10, 7), b"changed");
    }
}

//! The one place with `unsafe`: mapping a database file into memory.
//!
//! # Safety
//!
//! A memory map is only sound while no one else changes or truncates the
//! file underneath it. [`MappedFile`] upholds this by cooperative locking:
//!
//! * a writable map is created only while this process holds the file's
//!   **exclusive** advisory lock, and a read-only map only while it holds a
//!   **shared** lock; both locks live as long as the map (the [`File`] is
//!   kept beside it);
//! * every rrdcore handle takes these locks, so two rrdcore handles never
//!   have a writer beside another reader or writer;
//! * the file length is checked against the header before any byte is read
//!   through the map, and every access is bounds-checked (`get`), so a short
//!   or hostile file gives an error, not an out-of-bounds read.
//!
//! * a [`crate::Store`] holds the exclusive lock of its data directory for as
//!   long as it is open, and opens its files only through itself; it maps
//!   them without a per-file lock and closes the descriptor after mapping (the
//!   map keeps the file alive), so a million series need no million
//!   descriptors. The directory lock stands in for the file locks.
//!
//! What locking cannot prevent is another program that ignores advisory
//! locks and truncates or rewrites the file while it is mapped; as with
//! every mmap-based database (and RRDtool itself), that is outside the
//! contract and may raise SIGBUS. Do not edit database files in place with
//! other tools while rrdcore has them open.

#![expect(unsafe_code, reason = "memory-mapping a file is inherently unsafe; see the module docs")]
#![deny(clippy::indexing_slicing)]

use std::fs::File;

use memmap2::{Mmap, MmapMut, MmapOptions};

/// A locked file and its memory map, or an in-memory image.
pub(crate) struct MappedFile {
    map: Map,
    // Declared after `map` so the map is dropped (unmapped) before the lock is released.
    _file: Option<File>,
}

/// Updates touch a few scattered pages: no readahead, and page-sized cache
/// folios, so an 8-byte write dirties one page. Advice only; errors are ignored.
fn advise_random(map: &MmapMut) {
    let _ = map.advise(memmap2::Advice::Random);
}

impl std::fmt::Debug for MappedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.map {
            Map::ReadOnly(_) => "read-only map",
            Map::Writable(_) => "writable map",
            Map::Memory(_) => "in-memory image",
        };
        write!(f, "{kind} of {} bytes", self.bytes().len())
    }
}

enum Map {
    ReadOnly(Mmap),
    Writable(MmapMut),
    Memory(Vec<u8>),
}

impl MappedFile {
    /// Maps `file`, which the caller has locked exclusively, for reading and writing.
    pub(crate) fn writable(file: File) -> std::io::Result<Self> {
        // SAFETY: the caller holds the exclusive advisory lock on `file`, and the
        // lock lives as long as the map (see the module's Safety section).
        let map = unsafe { MmapOptions::new().map_mut(&file)? };
        advise_random(&map);
        Ok(MappedFile {
            map: Map::Writable(map),
            _file: Some(file),
        })
    }

    /// Maps `file` for reading and writing and closes the descriptor. The caller
    /// holds a lock that covers the file (the store's directory lock).
    pub(crate) fn writable_detached(file: File) -> std::io::Result<Self> {
        // SAFETY: the caller holds the data directory's exclusive lock, which
        // covers this file for as long as the store (and so this map) exists;
        // see the module's Safety section. The map keeps its own reference to
        // the file, so closing the descriptor does not invalidate it.
        let map = unsafe { MmapOptions::new().map_mut(&file)? };
        advise_random(&map);
        drop(file);
        Ok(MappedFile {
            map: Map::Writable(map),
            _file: None,
        })
    }

    /// Maps `file`, which the caller has locked (shared or exclusive), for reading.
    pub(crate) fn read_only(file: File) -> std::io::Result<Self> {
        // SAFETY: the caller holds an advisory lock on `file` that excludes
        // writers, and the lock lives as long as the map (module Safety section).
        let map = unsafe { MmapOptions::new().map(&file)? };
        Ok(MappedFile {
            map: Map::ReadOnly(map),
            _file: Some(file),
        })
    }

    /// An image held in memory, not backed by a file.
    pub(crate) fn memory(bytes: Vec<u8>) -> Self {
        MappedFile {
            map: Map::Memory(bytes),
            _file: None,
        }
    }

    /// The in-memory image, if this is one.
    pub(crate) fn into_memory(self) -> Option<Vec<u8>> {
        match self.map {
            Map::Memory(v) => Some(v),
            Map::ReadOnly(_) | Map::Writable(_) => None,
        }
    }

    /// The mapped bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        match &self.map {
            Map::ReadOnly(m) => m,
            Map::Writable(m) => m,
            Map::Memory(v) => v,
        }
    }

    /// The mapped bytes, writable; `None` for a read-only map.
    pub(crate) fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        match &mut self.map {
            Map::ReadOnly(_) => None,
            Map::Writable(m) => Some(m),
            Map::Memory(v) => Some(v),
        }
    }

    /// Writes dirty pages of `range` back to the file and waits for it.
    pub(crate) fn flush_range(&self, offset: usize, len: usize) -> std::io::Result<()> {
        match &self.map {
            Map::ReadOnly(_) | Map::Memory(_) => Ok(()),
            Map::Writable(m) => m.flush_range(offset, len),
        }
    }

    /// Writes all dirty pages back to the file and waits for it.
    pub(crate) fn flush(&self) -> std::io::Result<()> {
        match &self.map {
            Map::ReadOnly(_) | Map::Memory(_) => Ok(()),
            Map::Writable(m) => m.flush(),
        }
    }
}

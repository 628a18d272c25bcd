//! The Merkle tree's files: leaf hashes and the roots of large perfect subtrees, so that
//! appending is O(log n), proofs for any size are O(log n) reads, and a restart rehashes
//! nothing (it only catches up leaves the log has and the files lost).
//!
//! `merkle/leaves`: the leaf hash of record `i + 1` at offset `32 i`.
//! `merkle/level-NN`: the root of perfect subtree `j` of level `NN` at offset `32 j`, for
//! levels from `STORED_LEVEL_MIN` up. Lower subtrees are recomputed from at most
//! `2^STORED_LEVEL_MIN` leaves. All of it is derived from the log and can be deleted.
//! `merkle/format` names the tree the files hold (`FORMAT`); files of another tree (the
//! BLAKE3 tree of checkpoint format 1, which wrote no such file) are deleted on open and
//! rebuilt from the log.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::chain::merkle::{Frontier, Leaf, Nodes};
use crate::chain::record::Hash;

use super::StoreError;

/// Subtrees from this level up are stored (one 32-byte root per 64 leaves and above:
/// about 1 byte per record); below it they are recomputed from at most 64 leaf reads.
pub const STORED_LEVEL_MIN: u32 = 6;
const LEVELS: usize = 64;
/// The content of `merkle/format`: the tree of checkpoint format 2.
pub const FORMAT: &str = "rfc6962-sha256 records\n";

/// Read access to the files, safe to share with the writer appending behind it: every
/// read is at an offset below the size the caller knows is complete.
pub struct MerkleFiles {
    dir: PathBuf,
    leaves: File,
    levels: Vec<Option<File>>,
}

fn level_path(dir: &Path, level: u32) -> PathBuf {
    dir.join(format!("level-{level:02}"))
}

fn open_rw(path: &Path) -> Result<File, StoreError> {
    Ok(OpenOptions::new().read(true).append(true).create(true).open(path)?)
}

impl MerkleFiles {
    fn open(dir: &Path) -> Result<MerkleFiles, StoreError> {
        fs::create_dir_all(dir)?;
        let marker = dir.join("format");
        if fs::read(&marker).ok().as_deref() != Some(FORMAT.as_bytes()) {
            // Only our own files go: the leaves and the levels, then the marker is written.
            let ours = |name: &str| name == "leaves" || name.strip_prefix("level-").is_some_and(|l| l.len() == 2 && l.bytes().all(|b| b.is_ascii_digit()));
            let mut removed = 0;
            for e in fs::read_dir(dir)? {
                let e = e?;
                if e.file_name().to_str().is_some_and(ours) {
                    fs::remove_file(e.path())?;
                    removed += 1;
                }
            }
            if removed > 0 {
                tracing::info!(dir = %dir.display(), "the Merkle files are of another tree (or their format file was lost): rebuilding them from the log");
            }
            crate::fsutil::write_atomic(&marker, FORMAT.as_bytes(), "merkle")?;
        }
        let leaves = open_rw(&dir.join("leaves"))?;
        let mut levels = Vec::with_capacity(LEVELS);
        for l in 0..LEVELS as u32 {
            levels.push(if l >= STORED_LEVEL_MIN { Some(open_rw(&level_path(dir, l))?) } else { None });
        }
        Ok(MerkleFiles { dir: dir.to_owned(), leaves, levels })
    }

    fn read(f: &File, index: u64) -> Result<Hash, StoreError> {
        let mut h = [0u8; 32];
        f.read_exact_at(&mut h, index * 32).map_err(|e| StoreError::Corruption { at: "merkle files".into(), why: format!("hash {index} unreadable: {e}") })?;
        Ok(h)
    }

    /// Leaf hashes `from .. from + n` in one read (the scrub reads them in large runs).
    ///
    /// # Errors
    /// `Corruption` if the file does not hold them.
    pub fn leaves(&self, from: u64, n: u64) -> Result<Vec<Hash>, StoreError> {
        let mut buf = vec![0u8; (n * 32) as usize];
        self.leaves.read_exact_at(&mut buf, from * 32).map_err(|e| StoreError::Corruption { at: "merkle/leaves".into(), why: format!("leaves {from} to {} unreadable: {e}", from + n) })?;
        Ok(buf.chunks_exact(32).map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            h
        }).collect())
    }

    /// Puts back a stored hash found damaged: the leaf of record `index + 1` (`level`
    /// 0) or the root of stored subtree `index` of `level`, at its place. Only entries
    /// below the size every reader and the writer know to be complete are repaired, so
    /// the writer, which appends past them, never meets the write (its handle appends;
    /// this one writes at an offset).
    ///
    /// # Errors
    /// I/O errors; `Corruption` for a level that is not stored.
    pub fn repair(&self, level: u32, index: u64, hash: &Hash) -> Result<(), StoreError> {
        let path = match level {
            0 => self.dir.join("leaves"),
            l if l >= STORED_LEVEL_MIN && (l as usize) < LEVELS => level_path(&self.dir, l),
            l => return Err(StoreError::Corruption { at: "merkle files".into(), why: format!("level {l} is not stored") }),
        };
        let f = OpenOptions::new().write(true).open(&path)?;
        f.write_all_at(hash, index * 32)?;
        f.sync_data()?;
        Ok(())
    }

    fn leaves_len(&self) -> Result<u64, StoreError> {
        Ok(self.leaves.metadata()?.len() / 32)
    }
}

impl Nodes for MerkleFiles {
    type Error = StoreError;
    fn subtree(&self, level: u32, index: u64) -> Result<Hash, StoreError> {
        if level == 0 {
            return MerkleFiles::read(&self.leaves, index);
        }
        if let Some(Some(f)) = self.levels.get(level as usize) {
            return MerkleFiles::read(f, index);
        }
        let l = self.subtree(level - 1, index * 2)?;
        let r = self.subtree(level - 1, index * 2 + 1)?;
        Ok(crate::chain::merkle::node_hash(&l, &r))
    }
}

/// The writer's side: the frontier in memory and buffered appends to the files.
pub struct MerkleWriter {
    files: std::sync::Arc<MerkleFiles>,
    frontier: Frontier,
    leaf_buf: Vec<u8>,
    level_bufs: Vec<Vec<u8>>,
}

impl MerkleWriter {
    /// Opens the files and makes them consistent: entries cut short are dropped, levels
    /// are trimmed to what the leaves support, and missing level entries are recomputed.
    /// Then trims everything to at most `log_size` leaves (the log is the truth).
    pub fn open(dir: &Path, log_size: u64) -> Result<MerkleWriter, StoreError> {
        let files = MerkleFiles::open(dir)?;
        let n = files.leaves_len()?.min(log_size);
        files.leaves.set_len(n * 32)?;
        for l in STORED_LEVEL_MIN..LEVELS as u32 {
            let f = files.levels[l as usize].as_ref().expect("stored level");
            let want = n >> l;
            let have = (f.metadata()?.len() / 32).min(want);
            f.set_len(have * 32)?;
            let mut buf = Vec::new();
            for j in have..want {
                // Recompute from the level below (stored or not).
                let left = files.subtree(l - 1, 2 * j)?;
                let right = files.subtree(l - 1, 2 * j + 1)?;
                buf.extend_from_slice(&crate::chain::merkle::node_hash(&left, &right));
            }
            if !buf.is_empty() {
                (&*f).write_all(&buf)?;
            }
        }
        let frontier = Frontier::from_nodes(&files, n)?;
        Ok(MerkleWriter { files: std::sync::Arc::new(files), frontier, leaf_buf: Vec::new(), level_bufs: vec![Vec::new(); LEVELS] })
    }

    pub fn size(&self) -> u64 {
        self.frontier.size
    }

    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    pub fn reader(&self) -> std::sync::Arc<MerkleFiles> {
        self.files.clone()
    }

    /// Appends the next record's leaf (buffered until `flush`).
    pub fn push(&mut self, leaf: Leaf) {
        for (level, _, root) in self.frontier.push(leaf.0) {
            if level == 0 {
                self.leaf_buf.extend_from_slice(&root);
            } else if level >= STORED_LEVEL_MIN {
                self.level_bufs[level as usize].extend_from_slice(&root);
            }
        }
    }

    /// Writes what was pushed; readers may then ask for any size up to `size()`.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        if !self.leaf_buf.is_empty() {
            (&self.files.leaves).write_all(&self.leaf_buf)?;
            self.leaf_buf.clear();
        }
        for (l, buf) in self.level_bufs.iter_mut().enumerate() {
            if !buf.is_empty() {
                self.files.levels[l].as_ref().expect("stored level").write_all(buf)?;
                buf.clear();
            }
        }
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.files.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::merkle::{self, MemNodes};

    #[test]
    fn files_prove_like_memory_and_survive_reopen_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let hashes: Vec<Hash> = (0..300u64).map(|i| merkle::leaf_hash(&i.to_be_bytes())).collect();
        let mem = MemNodes(hashes.clone());
        let mut w = MerkleWriter::open(dir.path(), u64::MAX).unwrap();
        for h in &hashes[..200] {
            w.push(Leaf(*h));
        }
        w.flush().unwrap();
        assert_eq!(w.root(), merkle::root(&mem, 200).unwrap());
        drop(w);
        // Reopen, lose a torn half-entry and the level files, and go on.
        let mut f = OpenOptions::new().append(true).open(dir.path().join("leaves")).unwrap();
        f.write_all(&[1, 2, 3]).unwrap();
        fs::remove_file(dir.path().join("level-06")).unwrap();
        let mut w = MerkleWriter::open(dir.path(), u64::MAX).unwrap();
        assert_eq!(w.size(), 200);
        for h in &hashes[200..] {
            w.push(Leaf(*h));
        }
        w.flush().unwrap();
        let r = w.reader();
        for n in [1u64, 63, 64, 65, 128, 255, 256, 257, 300] {
            assert_eq!(merkle::root(&*r, n).unwrap(), merkle::root(&mem, n).unwrap(), "size {n}");
            let p = merkle::inclusion_proof(&*r, n - 1, n).unwrap();
            assert_eq!(p, merkle::inclusion_proof(&mem, n - 1, n).unwrap());
        }
        // A log shorter than the files trims them.
        let w = MerkleWriter::open(dir.path(), 100).unwrap();
        assert_eq!((w.size(), w.root()), (100, merkle::root(&mem, 100).unwrap()));
    }
}

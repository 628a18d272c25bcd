//! The Merkle tree over the records, RFC 6962 (section 2.1) with SHA-256, as the C2SP
//! tlog-checkpoint standard requires: the entries are the records' canonical bytes, so a
//! leaf is SHA-256(0x00 || record bytes), a node SHA-256(0x01 || left || right), the root
//! of the empty tree SHA-256(""). Leaf `i` is record `i + 1`. Any RFC 6962 or tlog-tiles
//! tool checks a record's inclusion from the record itself (docs/FORMAT.md section 6).
//!
//! The algorithms here are the RFC's (RFC 9162 2.1.1 to 2.1.4.2 states them for any hash),
//! written over `Nodes`, anything that can give the root of a perfect subtree, so that the
//! same code proves from the store's files and from a plain vector in tests. Verification
//! needs nothing but hashes.
//!
//! `TreeHash::Blake3V1` is the tree of checkpoint format 1 (BLAKE3 over the records'
//! hashes), kept to read version-1 archives and to upgrade a data directory or an
//! auditor's state signed with it; nothing new is made with it.

use sha2::{Digest, Sha256};

use super::record::Hash;

/// The leaf hash of an entry (a record's canonical bytes): SHA-256(0x00 || entry).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    Sha256::new().chain_update([0x00]).chain_update(entry).finalize().into()
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new().chain_update([0x01]).chain_update(left).chain_update(right).finalize().into()
}

pub fn empty_root() -> Hash {
    Sha256::digest(b"").into()
}

/// A Merkle leaf hash, as the store appends it: a type of its own, so that a record's
/// (BLAKE3 chain) hash can never be appended where its leaf belongs (both are 32 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaf(pub Hash);

impl Leaf {
    /// The leaf of a record: `leaf_hash` of its canonical bytes.
    pub fn of_record(canonical: &[u8]) -> Leaf {
        Leaf(leaf_hash(canonical))
    }
}

/// The hash a tree is built with: today's, or format 1's (read only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeHash {
    /// RFC 6962 with SHA-256 over the records' canonical bytes (checkpoint format 2).
    Sha256,
    /// Checkpoint format 1: BLAKE3(0x00 || record hash), BLAKE3(0x01 || l || r), BLAKE3("").
    Blake3V1,
}

impl TreeHash {
    /// The leaf of a record, from its canonical bytes and its (BLAKE3 chain) hash.
    pub fn leaf(self, canonical: &[u8], record_hash: &Hash) -> Hash {
        match self {
            TreeHash::Sha256 => leaf_hash(canonical),
            TreeHash::Blake3V1 => {
                let mut h = blake3::Hasher::new();
                h.update(&[0x00]);
                h.update(record_hash);
                *h.finalize().as_bytes()
            }
        }
    }

    pub fn node(self, left: &Hash, right: &Hash) -> Hash {
        match self {
            TreeHash::Sha256 => node_hash(left, right),
            TreeHash::Blake3V1 => {
                let mut h = blake3::Hasher::new();
                h.update(&[0x01]);
                h.update(left);
                h.update(right);
                *h.finalize().as_bytes()
            }
        }
    }

    pub fn empty(self) -> Hash {
        match self {
            TreeHash::Sha256 => empty_root(),
            TreeHash::Blake3V1 => *blake3::hash(b"").as_bytes(),
        }
    }
}

/// Roots of perfect subtrees: `subtree(level, index)` is the root over leaves
/// `index * 2^level .. (index + 1) * 2^level`, all of which exist.
pub trait Nodes {
    type Error;
    fn subtree(&self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// The largest power of two smaller than `n` (n >= 2).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// MTH(D[start .. start + len]) for a range aligned as the RFC's recursion aligns it.
pub fn range_root<N: Nodes>(nodes: &N, start: u64, len: u64) -> Result<Hash, N::Error> {
    if len == 0 {
        return Ok(empty_root());
    }
    if len.is_power_of_two() && start.is_multiple_of(len) {
        return nodes.subtree(len.trailing_zeros(), start / len);
    }
    let k = split(len);
    Ok(node_hash(&range_root(nodes, start, k)?, &range_root(nodes, start + k, len - k)?))
}

/// The root of the tree of the first `size` leaves.
pub fn root<N: Nodes>(nodes: &N, size: u64) -> Result<Hash, N::Error> {
    range_root(nodes, 0, size)
}

/// RFC 9162 2.1.3.1: the audit path of leaf `m` in the tree of `n` leaves (m < n).
pub fn inclusion_proof<N: Nodes>(nodes: &N, m: u64, n: u64) -> Result<Vec<Hash>, N::Error> {
    assert!(m < n, "the leaf is in the tree");
    let mut out = Vec::new();
    path(nodes, m, 0, n, &mut out)?;
    Ok(out)
}

fn path<N: Nodes>(nodes: &N, m: u64, start: u64, n: u64, out: &mut Vec<Hash>) -> Result<(), N::Error> {
    if n <= 1 {
        return Ok(());
    }
    let k = split(n);
    if m < k {
        path(nodes, m, start, k, out)?;
        out.push(range_root(nodes, start + k, n - k)?);
    } else {
        path(nodes, m - k, start + k, n - k, out)?;
        out.push(range_root(nodes, start, k)?);
    }
    Ok(())
}

/// RFC 9162 2.1.4.1: the proof that the tree of `m` leaves is a prefix of the tree of `n`.
pub fn consistency_proof<N: Nodes>(nodes: &N, m: u64, n: u64) -> Result<Vec<Hash>, N::Error> {
    assert!(0 < m && m <= n, "sizes of a consistency proof");
    let mut out = Vec::new();
    subproof(nodes, m, 0, n, true, &mut out)?;
    Ok(out)
}

fn subproof<N: Nodes>(nodes: &N, m: u64, start: u64, n: u64, whole: bool, out: &mut Vec<Hash>) -> Result<(), N::Error> {
    if m == n {
        if !whole {
            out.push(range_root(nodes, start, n)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(nodes, m, start, k, whole, out)?;
        out.push(range_root(nodes, start + k, n - k)?);
    } else {
        subproof(nodes, m - k, start + k, n - k, false, out)?;
        out.push(range_root(nodes, start, k)?);
    }
    Ok(())
}

/// Why a proof does not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("consistency proof sizes {from} -> {to} are not 0 < from <= to")]
    BadSizes { from: u64, to: u64 },
    #[error("the proof has the wrong number of hashes for its sizes")]
    WrongLength,
    #[error("the proof does not lead to the expected root")]
    RootMismatch,
}

/// RFC 9162 2.1.3.2: verifies that `leaf` (a leaf hash) is leaf `index` of the tree of
/// `size` leaves with root `root`.
///
/// # Errors
/// `ProofError` saying why not.
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return Err(ProofError::WrongLength);
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::WrongLength);
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// RFC 9162 2.1.4.2: verifies that the tree of `from` leaves with root `from_root` is a
/// prefix of the tree of `to` leaves with root `to_root`.
///
/// # Errors
/// `ProofError` saying why not.
pub fn verify_consistency(from: u64, to: u64, from_root: &Hash, to_root: &Hash, proof: &[Hash]) -> Result<(), ProofError> {
    if from == 0 || from > to {
        return Err(ProofError::BadSizes { from, to });
    }
    if from == to {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if from_root == to_root { Ok(()) } else { Err(ProofError::RootMismatch) };
    }
    let mut path: Vec<Hash> = proof.to_vec();
    if from.is_power_of_two() {
        path.insert(0, *from_root);
    }
    let Some((first, rest)) = path.split_first() else { return Err(ProofError::WrongLength) };
    let (mut f_n, mut s_n) = (from - 1, to - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s_n == 0 {
            return Err(ProofError::WrongLength);
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr != *from_root || sr != *to_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// The compact range of a tree: the roots of the perfect subtrees that make up its first
/// `size` leaves, largest first. Appending a leaf is O(log n); so is the root. This is what
/// the writer keeps in memory and what an auditor saves between visits.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Frontier {
    pub size: u64,
    /// (level, root) of each perfect subtree, levels strictly decreasing.
    pub peaks: Vec<(u32, Hash)>,
}

impl Frontier {
    /// Appends a leaf (a leaf hash, not a record hash). Returns the perfect subtrees this
    /// completed, as (level, index, root), smallest first, the leaf itself included.
    pub fn push(&mut self, leaf: Hash) -> Vec<(u32, u64, Hash)> {
        self.push_as(TreeHash::Sha256, leaf)
    }

    /// `push` in the tree of `kind`.
    pub fn push_as(&mut self, kind: TreeHash, leaf: Hash) -> Vec<(u32, u64, Hash)> {
        let mut done = vec![(0, self.size, leaf)];
        let mut cur = (0u32, leaf);
        while let Some(&(lvl, h)) = self.peaks.last() {
            if lvl != cur.0 {
                break;
            }
            self.peaks.pop();
            cur = (lvl + 1, kind.node(&h, &cur.1));
            done.push((cur.0, self.size >> cur.0, cur.1));
        }
        self.peaks.push(cur);
        self.size += 1;
        done
    }

    pub fn root(&self) -> Hash {
        self.root_as(TreeHash::Sha256)
    }

    /// `root` in the tree of `kind`.
    pub fn root_as(&self, kind: TreeHash) -> Hash {
        let mut it = self.peaks.iter().rev();
        let Some(&(_, mut acc)) = it.next() else { return kind.empty() };
        for (_, h) in it {
            acc = kind.node(h, &acc);
        }
        acc
    }

    /// The frontier of the first `size` leaves, from any `Nodes`.
    pub fn from_nodes<N: Nodes>(nodes: &N, size: u64) -> Result<Frontier, N::Error> {
        let mut peaks = Vec::new();
        let mut start = 0u64;
        for level in (0..64u32).rev() {
            if size & (1 << level) != 0 {
                peaks.push((level, nodes.subtree(level, start >> level)?));
                start += 1 << level;
            }
        }
        Ok(Frontier { size, peaks })
    }
}

/// Leaf hashes in memory: `Nodes` by recomputation, for tests and small verifiers.
pub struct MemNodes(pub Vec<Hash>);

impl Nodes for MemNodes {
    type Error = std::convert::Infallible;
    fn subtree(&self, level: u32, index: u64) -> Result<Hash, Self::Error> {
        if level == 0 {
            return Ok(self.0[index as usize]);
        }
        let l = self.subtree(level - 1, index * 2)?;
        let r = self.subtree(level - 1, index * 2 + 1)?;
        Ok(node_hash(&l, &r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MTH by the RFC's definition, over leaf hashes, recursively: the naive reference.
    fn naive(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&naive(&leaves[..k]), &naive(&leaves[k..]))
            }
        }
    }

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn roots_frontiers_and_proofs_agree_with_the_definition_for_every_small_size() {
        for n in 0..=40u64 {
            let l = leaves(n);
            let nodes = MemNodes(l.clone());
            let want = naive(&l);
            assert_eq!(root(&nodes, n).unwrap(), want, "root {n}");
            let mut f = Frontier::default();
            for h in &l {
                f.push(*h);
            }
            assert_eq!(f.root(), want, "frontier {n}");
            assert_eq!(Frontier::from_nodes(&nodes, n).unwrap(), f);
            for m in 0..n {
                let p = inclusion_proof(&nodes, m, n).unwrap();
                verify_inclusion(&l[m as usize], m, n, &p, &want).unwrap();
                assert!(verify_inclusion(&l[m as usize], m, n, &p, &empty_root()).is_err());
                if n > 1 {
                    let other = (m + 1) % n;
                    assert!(verify_inclusion(&l[other as usize], m, n, &p, &want).is_err() || l[other as usize] == l[m as usize]);
                }
            }
            for m in 1..=n {
                let p = consistency_proof(&nodes, m, n).unwrap();
                verify_consistency(m, n, &naive(&l[..m as usize]), &want, &p).unwrap();
                if m < n {
                    // A different history of the same size does not verify.
                    let mut forked = l[..m as usize].to_vec();
                    forked[0] = leaf_hash(&[9; 32]);
                    assert!(verify_consistency(m, n, &naive(&forked), &want, &p).is_err());
                }
            }
        }
    }
}

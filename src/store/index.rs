//! The sled index: frame positions, idempotency entries and the position they reflect,
//! in one tree with one-byte key prefixes so that one sled batch per group commit updates
//! all of them atomically. (Projections are not here: they are snapshotted whole, see
//! `snapshot.rs`; data directories of format 1 before that change may still hold `S`
//! entries, which nothing reads.)
//!
//! | prefix | key | value |
//! |---|---|---|
//! | `M` | meta name | meta value (`ledger_id`, `applied` = seq u64 + head 32 + segment u64 + offset u64) |
//! | `F` | first seq of a frame, u64 BE | segment u64 BE, offset u64 BE, record count u32 BE |
//! | `I` | principal, 0x00, request id | `IdemEntry` (canonical bytes) |

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::chain::codec;
use crate::chain::record::Hash;
use crate::domain::ids::RequestId;
use crate::domain::principal::Principal;

use super::log::Position;
use super::StoreError;

/// What an accepted request was answered: returned again to a retry with the same content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdemEntry {
    pub digest: Hash,
    pub first_seq: u64,
    pub last_seq: u64,
    pub head: Hash,
    pub recorded_at_ms: i64,
}

/// The key of an idempotent request: who sent it and the id they gave it (a request id
/// is unique per principal).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdemKey {
    pub principal: Principal,
    pub request_id: RequestId,
}

impl IdemKey {
    fn bytes(&self) -> Vec<u8> {
        let principal = self.principal.to_string();
        let request_id = self.request_id.as_str();
        let mut k = Vec::with_capacity(2 + principal.len() + request_id.len());
        k.push(b'I');
        k.extend_from_slice(principal.as_bytes());
        k.push(0);
        k.extend_from_slice(request_id.as_bytes());
        k
    }
}

/// The position the index reflects: every record up to `seq` is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    pub seq: u64,
    pub head: Hash,
    pub log_end: Position,
}

pub struct Index {
    db: sled::Db,
    tree: sled::Tree,
}

/// Changes for one sled batch.
#[derive(Default)]
pub struct IndexBatch {
    batch: sled::Batch,
    pub entries: usize,
}

impl IndexBatch {
    pub fn frame(&mut self, first_seq: u64, pos: Position, count: u32) {
        let mut v = Vec::with_capacity(20);
        v.extend_from_slice(&pos.segment.to_be_bytes());
        v.extend_from_slice(&pos.offset.to_be_bytes());
        v.extend_from_slice(&count.to_be_bytes());
        self.batch.insert(frame_key(first_seq).to_vec(), v);
        self.entries += 1;
    }

    pub fn idem(&mut self, key: &IdemKey, e: &IdemEntry) {
        self.batch.insert(key.bytes(), codec::encode(e));
        self.entries += 1;
    }

    pub fn applied(&mut self, a: Applied) {
        let mut v = Vec::with_capacity(56);
        v.extend_from_slice(&a.seq.to_be_bytes());
        v.extend_from_slice(&a.head);
        v.extend_from_slice(&a.log_end.segment.to_be_bytes());
        v.extend_from_slice(&a.log_end.offset.to_be_bytes());
        self.batch.insert(b"Mapplied".to_vec(), v);
        self.entries += 1;
    }
}

/// A big-endian u64 from exactly 8 bytes (callers slice checked lengths).
fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    u64::from_be_bytes(a)
}

fn hash_at(b: &[u8]) -> Hash {
    let mut a = [0u8; 32];
    a.copy_from_slice(b);
    a
}

fn frame_key(seq: u64) -> [u8; 9] {
    let mut k = [b'F'; 9];
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

impl Index {
    pub fn open(dir: &Path) -> Result<Index, StoreError> {
        // No background flusher: the writer flushes (`Index::flush`) at most every
        // `INDEX_FLUSH_INTERVAL_MS` and on close, and sled's lock is released promptly
        // when the ledger closes (a flusher thread would hold it for a while after).
        let db = super::open_sled(&sled::Config::new().path(dir).cache_capacity(64 << 20).flush_every_ms(None))?;
        let tree = db.open_tree("anxin")?;
        Ok(Index { db, tree })
    }

    pub fn ledger_id(&self) -> Result<Option<String>, StoreError> {
        Ok(self.tree.get(b"Mledger_id")?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    pub fn set_ledger_id(&self, id: &str) -> Result<(), StoreError> {
        self.tree.insert(b"Mledger_id", id.as_bytes())?;
        Ok(())
    }

    pub fn applied(&self) -> Result<Option<Applied>, StoreError> {
        let Some(v) = self.tree.get(b"Mapplied")? else { return Ok(None) };
        if v.len() != 56 {
            return Err(StoreError::Index("applied marker has the wrong length".into()));
        }
        Ok(Some(Applied { seq: be_u64(&v[0..8]), head: hash_at(&v[8..40]), log_end: Position { segment: be_u64(&v[40..48]), offset: be_u64(&v[48..56]) } }))
    }

    pub fn idem(&self, key: &IdemKey) -> Result<Option<IdemEntry>, StoreError> {
        match self.tree.get(key.bytes())? {
            None => Ok(None),
            Some(v) => codec::decode(&v).map(Some).map_err(|e| StoreError::Index(format!("idempotency entry: {e}"))),
        }
    }

    /// The frame holding `seq`: its first seq and position.
    pub fn frame_of(&self, seq: u64) -> Result<Option<(u64, Position, u32)>, StoreError> {
        let Some(kv) = self.tree.range(frame_key(0)..=frame_key(seq)).next_back() else { return Ok(None) };
        let (k, v) = kv?;
        // Read from disk: a damaged entry is an error, never a panic.
        if k.len() != 9 || v.len() != 20 {
            return Err(StoreError::Index(format!("a frame entry has {} key and {} value bytes (9 and 20 expected): the index is damaged; run `anxin rebuild`", k.len(), v.len())));
        }
        let first = be_u64(&k[1..9]);
        let count = u32::from_be_bytes([v[16], v[17], v[18], v[19]]);
        Ok(Some((first, Position { segment: be_u64(&v[..8]), offset: be_u64(&v[8..16]) }, count)))
    }

    pub fn apply(&self, b: IndexBatch) -> Result<(), StoreError> {
        self.tree.apply_batch(b.batch)?;
        Ok(())
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

//! An auditor's c2sp.org/tlog-tiles client (`anxin audit --tiles URL`): the latest
//! checkpoint, a consistency proof made from hash tiles, and records read from entry
//! bundles, from `anxind`'s tiles server (`api::tiles`) or any mirror that copied them.
//!
//! Nothing fetched is trusted: the tiles a proof is made from are first checked to hash
//! to the signed root of the tree they were fetched for (so a damaged or forged tile is
//! named as such, never taken for a fork), the proof is then checked by the auditor
//! against both signed roots, and the records are checked by their chain and Merkle root
//! (`audit::Catchup`).

use axum::body::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use crate::chain::checkpoint::SignedCheckpoint;
use crate::chain::merkle::{self, Nodes};
use crate::chain::record::Hash;

/// Hashes (or entries) in a full tile: the server's.
pub use crate::api::tiles::TILE_WIDTH;
/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer read: a full entry bundle of the largest records (256 x 65,537 bytes).
const MAX_BODY: usize = 256 * 65_537;
/// The largest checkpoint note read (a checkpoint with many cosignatures).
const MAX_NOTE: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum TilesError {
    #[error("{url}: {why}")]
    Http { url: String, why: String },
    #[error("{url}: HTTP {status}: {body}")]
    Status { url: String, status: u16, body: String },
    #[error("{url}: {why} (the server's tiles are damaged or forged)")]
    Malformed { url: String, why: String },
    #[error("the hash tiles of the tree of {size} records do not hash to its signed root (the server's tiles are damaged or forged)")]
    NotTheRoot { size: u64 },
}

/// The path of a tile below the base URL: `tile/<L>/<N>[.p/<W>]`, or `tile/entries/...`
/// for an entry bundle (level `None`), `N` in groups of three digits with `x` before all
/// but the last.
pub fn tile_path(level: Option<u32>, index: u64, width: u64) -> String {
    let mut n = format!("{:03}", index % 1000);
    let mut rest = index / 1000;
    while rest > 0 {
        n = format!("x{:03}/{n}", rest % 1000);
        rest /= 1000;
    }
    let level = level.map_or_else(|| "entries".to_owned(), |l| l.to_string());
    if width == TILE_WIDTH {
        format!("tile/{level}/{n}")
    } else {
        format!("tile/{level}/{n}.p/{width}")
    }
}

/// A tiles server, read with a bearer token.
pub struct TileClient {
    http: Client<HttpConnector, Empty<Bytes>>,
    base: String,
    token: String,
}

impl TileClient {
    /// A client of the tiles at `base` (`http://host:port`, with or without a final `/`).
    ///
    /// # Errors
    /// `Http` if `base` is not an `http://` URL (this build reads tiles over plain HTTP,
    /// as anxind serves them; every byte is verified against the signed checkpoint).
    pub fn new(base: &str, token: &str) -> Result<TileClient, TilesError> {
        if !base.starts_with("http://") {
            return Err(TilesError::Http { url: base.to_owned(), why: "a tiles URL starts with http://".into() });
        }
        let http = Client::builder(TokioExecutor::new()).build_http();
        Ok(TileClient { http, base: base.trim_end_matches('/').to_owned(), token: token.to_owned() })
    }

    async fn get(&self, path: &str, limit: usize) -> Result<Vec<u8>, TilesError> {
        let url = format!("{}/{path}", self.base);
        let http = |why: String| TilesError::Http { url: url.clone(), why };
        let req = hyper::Request::get(&url).header("authorization", format!("Bearer {}", self.token)).body(Empty::new()).map_err(|e| http(e.to_string()))?;
        let resp = tokio::time::timeout(TIMEOUT, self.http.request(req)).await.map_err(|_| http("timed out".into()))?.map_err(|e| http(e.to_string()))?;
        let status = resp.status().as_u16();
        let limited = http_body_util::Limited::new(resp.into_body(), limit);
        let body = tokio::time::timeout(TIMEOUT, limited.collect()).await.map_err(|_| http("timed out".into()))?.map_err(|e| http(format!("{e} (more than {limit} bytes?)")))?.to_bytes();
        if status != 200 {
            let text = String::from_utf8_lossy(&body[..body.len().min(512)]).trim().to_owned();
            return Err(TilesError::Status { url, status, body: text });
        }
        Ok(body.to_vec())
    }

    /// The checkpoint the server publishes (`/checkpoint`), unverified: the caller checks
    /// its signature and, with a policy, its cosignatures.
    ///
    /// # Errors
    /// `Http`, `Status`, or `Malformed` if it is not a signed note of a checkpoint.
    pub async fn checkpoint(&self) -> Result<SignedCheckpoint, TilesError> {
        let note = self.get("checkpoint", MAX_NOTE).await?;
        SignedCheckpoint::from_note(&note).map_err(|e| TilesError::Malformed { url: format!("{}/checkpoint", self.base), why: e.to_string() })
    }

    /// The hashes of tile `(level, index)` of the tree of `size` leaves.
    async fn hash_tile(&self, level: u32, index: u64, size: u64) -> Result<Vec<Hash>, TilesError> {
        let width = ((size >> (8 * level)) - index * TILE_WIDTH).min(TILE_WIDTH);
        let path = tile_path(Some(level), index, width);
        let body = self.get(&path, 32 * TILE_WIDTH as usize).await?;
        if body.len() as u64 != 32 * width {
            return Err(TilesError::Malformed { url: format!("{}/{path}", self.base), why: format!("{} bytes, not {} hashes", body.len(), width) });
        }
        Ok(body.chunks_exact(32).map(|c| c.try_into().expect("32 bytes")).collect())
    }

    /// The tiles holding every subtree `nodes` asks for, in the tree of `size` leaves.
    async fn tiles_for(&self, size: u64, wanted: &BTreeSet<(u32, u64)>) -> Result<TileNodes, TilesError> {
        let mut tiles = HashMap::new();
        for &(level, index) in wanted {
            let (tl, first) = (level / 8, index << (level % 8));
            let key = (tl, first / TILE_WIDTH);
            if !tiles.contains_key(&key) {
                tiles.insert(key, self.hash_tile(key.0, key.1, size).await?);
            }
        }
        Ok(TileNodes(tiles))
    }

    /// The consistency proof from the tree of `old` leaves to the tree of `new`, made from
    /// the hash tiles of the tree of `new`, whose root `new_root` (from a checkpoint whose
    /// signature the caller verified) every tile used must hash to.
    ///
    /// # Errors
    /// `NotTheRoot` if the tiles do not give `new_root`; `Http`, `Status`, `Malformed`.
    pub async fn consistency_proof(&self, old: u64, new: u64, new_root: &Hash) -> Result<Vec<Hash>, TilesError> {
        assert!(0 < old && old <= new, "sizes of a consistency proof");
        // The subtrees the proof and the root are made of (the shapes depend on the sizes
        // alone), fetched, then the proof and the root computed from them.
        let wanted = Wanted::default();
        let _ = merkle::consistency_proof(&wanted, old, new);
        let _ = merkle::root(&wanted, new);
        let nodes = self.tiles_for(new, &wanted.0.borrow()).await?;
        if merkle::root(&nodes, new).map_err(|()| TilesError::NotTheRoot { size: new })? != *new_root {
            return Err(TilesError::NotTheRoot { size: new });
        }
        merkle::consistency_proof(&nodes, old, new).map_err(|()| TilesError::NotTheRoot { size: new })
    }

    /// Records `from..=to` (sequence numbers from 1) of the tree of `size` leaves, from
    /// the entry bundles, each given to `f` with its sequence number.
    ///
    /// # Errors
    /// `Status` 403 if the caller may not read every record of a bundle (a bank or a
    /// contractor: it reads its records with `ReadEvents`); `Malformed` if a bundle does
    /// not hold exactly its records; `Http`; or `f`'s error.
    pub async fn records<E: From<TilesError>>(&self, from: u64, to: u64, size: u64, f: &mut dyn FnMut(u64, Vec<u8>) -> Result<(), E>) -> Result<(), E> {
        if from > to {
            return Ok(());
        }
        assert!(from >= 1 && to <= size, "records inside the tree");
        for bundle in (from - 1) / TILE_WIDTH..=(to - 1) / TILE_WIDTH {
            let width = (size - bundle * TILE_WIDTH).min(TILE_WIDTH);
            let path = tile_path(None, bundle, width);
            let body = self.get(&path, MAX_BODY).await?;
            let entries = split_bundle(&body, width).map_err(|why| TilesError::Malformed { url: format!("{}/{path}", self.base), why })?;
            for (i, e) in entries.into_iter().enumerate() {
                let seq = bundle * TILE_WIDTH + i as u64 + 1;
                if (from..=to).contains(&seq) {
                    f(seq, e)?;
                }
            }
        }
        Ok(())
    }
}

/// An entry bundle's records: each a big-endian u16 length and its bytes, `width` of
/// them and nothing after.
fn split_bundle(mut body: &[u8], width: u64) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    while !body.is_empty() {
        let [a, b, rest @ ..] = body else { return Err("an entry's length is cut short".into()) };
        let len = u16::from_be_bytes([*a, *b]) as usize;
        if rest.len() < len {
            return Err(format!("entry {} is cut short", out.len()));
        }
        out.push(rest[..len].to_vec());
        body = &rest[len..];
    }
    if out.len() as u64 != width {
        return Err(format!("{} entries where the bundle holds {width}", out.len()));
    }
    Ok(out)
}

/// Records which subtrees a computation asks for, answering with zeros.
#[derive(Default)]
struct Wanted(std::cell::RefCell<BTreeSet<(u32, u64)>>);

impl Nodes for Wanted {
    type Error = ();
    fn subtree(&self, level: u32, index: u64) -> Result<Hash, ()> {
        self.0.borrow_mut().insert((level, index));
        Ok([0; 32])
    }
}

/// Subtrees from fetched hash tiles: a subtree of height `8t + h` is the hash of `2^h`
/// consecutive hashes of a tile at level `t`.
struct TileNodes(HashMap<(u32, u64), Vec<Hash>>);

impl Nodes for TileNodes {
    type Error = ();
    fn subtree(&self, level: u32, index: u64) -> Result<Hash, ()> {
        let (tl, h) = (level / 8, level % 8);
        let first = index << h;
        let tile = self.0.get(&(tl, first / TILE_WIDTH)).ok_or(())?;
        let start = (first % TILE_WIDTH) as usize;
        let mut row: Vec<Hash> = tile.get(start..start + (1 << h)).ok_or(())?.to_vec();
        while row.len() > 1 {
            row = row.chunks_exact(2).map(|p| merkle::node_hash(&p[0], &p[1])).collect();
        }
        Ok(row[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::merkle::{leaf_hash, MemNodes};

    #[test]
    fn tile_paths_are_written_as_the_spec_spells_them() {
        assert_eq!(tile_path(Some(0), 0, 256), "tile/0/000");
        assert_eq!(tile_path(Some(1), 1_234_067, 17), "tile/1/x001/x234/067.p/17");
        assert_eq!(tile_path(None, 5, 3), "tile/entries/005.p/3");
        assert_eq!(tile_path(Some(2), 1000, 256), "tile/2/x001/000");
    }

    /// The subtrees computed from tiles are the tree's, at every level and size.
    #[test]
    fn tiles_give_the_same_proofs_as_the_tree() {
        let leaves: Vec<Hash> = (0..66_000u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mem = MemNodes(leaves.clone());
        for size in [1u64, 255, 256, 257, 65_535, 65_536, 65_537, 66_000] {
            // Tiles of the tree of `size`: level 0 the leaves, level 1 the roots of 256.
            let mut tiles = HashMap::new();
            for (tl, count) in [(0u32, size), (1, size >> 8), (2, size >> 16)] {
                for t in 0..count.div_ceil(TILE_WIDTH) {
                    let w = (count - t * TILE_WIDTH).min(TILE_WIDTH);
                    tiles.insert((tl, t), (0..w).map(|i| mem.subtree(8 * tl, t * TILE_WIDTH + i).unwrap()).collect());
                }
            }
            let nodes = TileNodes(tiles);
            assert_eq!(merkle::root(&nodes, size).ok(), merkle::root(&mem, size).ok(), "root of {size}");
            for old in [1u64, 2, 255, 256, 300, 65_536, size] {
                if old <= size {
                    assert_eq!(merkle::consistency_proof(&nodes, old, size).ok(), merkle::consistency_proof(&mem, old, size).ok(), "{old} to {size}");
                }
            }
        }
    }

    #[test]
    fn bundles_hold_exactly_their_entries() {
        assert_eq!(split_bundle(&[0, 1, 7, 0, 0], 2), Ok(vec![vec![7], vec![]]));
        assert!(split_bundle(&[0, 1, 7], 2).is_err());
        assert!(split_bundle(&[0, 2, 7], 1).is_err());
        assert!(split_bundle(&[0, 1, 7, 0], 2).is_err());
    }
}

//! Upgrading a data directory signed with checkpoint format 1 (a BLAKE3 tree over record
//! hashes, binary checkpoints) to format 2 (RFC 6962 SHA-256 over the records' bytes,
//! signed notes): before anything else opens the ledger, the old checkpoint is verified
//! with the ledger's key and checked against the log exactly as an auditor would (every
//! link from genesis, the format-1 root and chain head at its size); only then is a
//! format-2 checkpoint of the same size, root computed from the same records, signed and
//! put in its place. The old one is kept beside it as `checkpoints/v1-latest`, so that an
//! auditor who pinned it can still compare. A format-1 checkpoint that does not check is
//! damage, refused like any other: nothing is re-signed over a log it does not match.
//! The Merkle files are rebuilt by `store::merkle` on open (their format file).

use std::path::Path;


use crate::chain::checkpoint::Checkpoint;
use crate::chain::checkpoint_v1;
use crate::chain::merkle::{leaf_hash, Frontier, TreeHash};
use crate::chain::record::{genesis_hash, ChainVerifier, Hash};
use crate::domain::ids::LedgerId;
use crate::store::{log, StoreError};

use super::signer::{checkpoint_path, save_checkpoint};
use super::LedgerOptions;

/// Upgrades `checkpoints/latest` if it holds a format-1 checkpoint; nothing otherwise.
pub(super) fn checkpoint_v1(dir: &Path, opts: &LedgerOptions, ledger_id: &LedgerId) -> Result<(), StoreError> {
    let path = checkpoint_path(dir);
    let Ok(bytes) = std::fs::read(&path) else { return Ok(()) };
    if crate::chain::checkpoint::SignedCheckpoint::from_note(&bytes).is_ok() {
        return Ok(());
    }
    // Not format 1 either: damage, which loading names.
    let Ok(old) = crate::chain::codec::decode::<checkpoint_v1::SignedCheckpoint>(&bytes) else { return Ok(()) };
    let refuse = |why: String| StoreError::Corruption { at: "checkpoints/latest (format 1)".into(), why };
    let key_path = opts.signing_key.clone().unwrap_or_else(|| dir.join("keys").join("checkpoint.ed25519"));
    let key = super::signer::load_or_create_key(&key_path, false, ledger_id.as_str())?;
    old.verify(&key.verifying_key()).map_err(|e| refuse(format!("{e}: the checkpoint is damaged or the key replaced; nothing is upgraded")))?;
    let c = &old.checkpoint;
    if c.ledger_id != ledger_id.as_str() {
        return Err(refuse(format!("it is of ledger {:?}, the data directory of {:?}", c.ledger_id, ledger_id.as_str())));
    }
    let (v1_root, v2_root, head) = roots(&dir.join("log"), ledger_id, c.tree_size)?;
    if v1_root != c.root || head != c.chain_head {
        return Err(refuse(format!("the log's first {} records do not give its {}: the log was rewritten; nothing is upgraded", c.tree_size, if v1_root != c.root { "root" } else { "chain head" })));
    }
    let new = Checkpoint { ledger_id: c.ledger_id.clone(), tree_size: c.tree_size, root: v2_root, chain_head: c.chain_head, timestamp_ms: c.timestamp_ms }.sign(&key);
    crate::fsutil::write_atomic(&dir.join("checkpoints").join("v1-latest"), &bytes, ledger_id.as_str())?;
    save_checkpoint(dir, &new, ledger_id.as_str())?;
    tracing::warn!(size = c.tree_size, "upgraded the format-1 checkpoint (checked against the log first) to format 2: auditors re-verify from genesis once (docs/FORMAT.md section 8)");
    Ok(())
}

/// The format-1 and format-2 roots and the chain head of the first `size` records, every
/// link checked from genesis.
fn roots(log_dir: &Path, ledger_id: &LedgerId, size: u64) -> Result<(Hash, Hash, Hash), StoreError> {
    let mut chain = ChainVerifier::new(ledger_id.as_str());
    let (mut v1, mut v2) = (Frontier::default(), Frontier::default());
    if size > 0 {
        log::scan_while(log_dir, ledger_id.as_str(), None, false, &mut |f| {
            for bytes in &f.records {
                if v2.size == size {
                    return Ok(false);
                }
                let hash = chain.check_link(bytes).map_err(|e| StoreError::Corruption { at: format!("record {}", v2.size + 1), why: e.to_string() })?;
                v1.push_as(TreeHash::Blake3V1, TreeHash::Blake3V1.leaf(bytes, &hash));
                v2.push(leaf_hash(bytes));
            }
            Ok(v2.size < size)
        })?;
    }
    if v2.size < size {
        return Err(StoreError::Corruption { at: "checkpoints/latest (format 1)".into(), why: format!("it covers {size} records but the log holds {}", v2.size) });
    }
    let head = if size == 0 { genesis_hash(ledger_id.as_str()) } else { chain.head() };
    Ok((v1.root_as(TreeHash::Blake3V1), v2.root(), head))
}

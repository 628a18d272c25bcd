//! `LedgerAudit`: the log as canonical bytes, historical and live.
//!
//! Streams are fed by a task that reads the log in chunks into a bounded channel: a client
//! that reads slowly fills only its own buffer and never holds up the writer.

use std::pin::Pin;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::chain::record::record_hash;
use crate::limits::{STREAM_READ_CHUNK, STREAM_RECORDS_BUFFER};

use super::error::ApiError;
use super::{pb, Api};

pub struct Audit(pub Api);

type RecordStream = Pin<Box<dyn Stream<Item = Result<pb::RecordBytes, Status>> + Send>>;

impl Api {
    /// Streams records `from..=to` (`to = None`: follow the head live, forever).
    fn stream_records(&self, caller: super::auth::Caller, from: u64, to: Option<u64>) -> RecordStream {
        let (tx, rx) = mpsc::channel(STREAM_RECORDS_BUFFER);
        let ledger = self.ledger.clone();
        tokio::spawn(async move {
            let reads_all = super::auth::reads_every_record(&caller.principal);
            let who = caller.principal.clone();
            // The caller's place is held while the stream is open.
            let _caller = caller;
            let mut next = from.max(1);
            let mut durable = ledger.watch_durable();
            let mut closed = ledger.watch_closed();
            loop {
                let head = *durable.borrow_and_update();
                let last = to.map_or(head, |t| t.min(head));
                while next <= last {
                    let upto = last.min(next + STREAM_READ_CHUNK - 1);
                    let (l, who) = (ledger.clone(), who.clone());
                    // Each record with whether the caller may read it (`auth::may_read_record`).
                    let read = tokio::task::spawn_blocking(move || -> Result<Vec<(u64, Vec<u8>, bool)>, crate::store::StoreError> {
                        let recs = l.read_records(next, upto)?;
                        if reads_all {
                            return Ok(recs.into_iter().map(|(s, b)| (s, b, true)).collect());
                        }
                        let state = l.state()?;
                        Ok(recs.into_iter().map(|(s, b)| {
                            let ok = crate::chain::record::Record::decode(&b).is_ok_and(|r| super::auth::may_read_record(&who, &state, &r));
                            (s, b, ok)
                        }).collect())
                    })
                    .await;
                    let recs = match read {
                        Ok(Ok(r)) => r,
                        Ok(Err(e)) => {
                            let _ = tx.send(Err(e.into())).await;
                            return;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(ApiError::internal(e.to_string()).into())).await;
                            return;
                        }
                    };
                    if recs.is_empty() {
                        // Never the case for a range within the durable head (the ledger
                        // answers damage as an error); if it were, answering beats a hang.
                        let _ = tx.send(Err(crate::store::StoreError::Corruption { at: format!("record {next}"), why: "the log did not return it".into() }.into())).await;
                        return;
                    }
                    for (seq, mut bytes, readable) in recs {
                        let hash = record_hash(&bytes).to_vec();
                        let leaf_hash = crate::chain::merkle::leaf_hash(&bytes).to_vec();
                        // What the caller may not read: the header, the hash and the leaf
                        // only (the proto's RecordBytes).
                        let withheld = !readable;
                        if withheld {
                            bytes.truncate(crate::chain::record::HEADER_BYTES);
                        }
                        if tx.send(Ok(pb::RecordBytes { seq, canonical: bytes, hash, withheld, leaf_hash })).await.is_err() {
                            return; // the client went away
                        }
                        next = seq + 1;
                    }
                }
                if to.is_some() {
                    return; // a bounded read ends at its last record
                }
                tokio::select! {
                    changed = durable.changed() => if changed.is_err() { return },
                    () = tx.closed() => return,
                    // Shut down (a stop, or a damaged copy about to be rebuilt): the
                    // stream ends and lets go of the ledger.
                    _ = closed.wait_for(|c| *c) => return,
                }
            }
        });
        Box::pin(ReceiverStream::new(rx))
    }
}

pub fn checkpoint_to_pb(cp: &crate::chain::checkpoint::SignedCheckpoint, key: &ed25519_dalek::VerifyingKey) -> pb::Checkpoint {
    let c = &cp.checkpoint;
    pb::Checkpoint {
        ledger_id: c.ledger_id.clone(),
        tree_size: c.tree_size,
        root: c.root.to_vec(),
        chain_head: c.chain_head.to_vec(),
        timestamp_ms: c.timestamp_ms,
        signature: cp.log_signature(key).map(|s| s.to_vec()).unwrap_or_default(),
        version: u32::from(crate::chain::checkpoint::CHECKPOINT_VERSION),
        note: cp.to_note(),
    }
}

fn proof_err(e: crate::ledger::ProofRequestError) -> Status {
    match e {
        crate::ledger::ProofRequestError::Invalid(m) => ApiError::invalid("INVALID_TREE_SIZE", m).into(),
        crate::ledger::ProofRequestError::NotYet(m) => ApiError::new(tonic::Code::FailedPrecondition, "NOT_YET_CHECKPOINTED", m).into(),
        crate::ledger::ProofRequestError::Store(e) => e.into(),
    }
}

#[tonic::async_trait]
impl pb::ledger_audit_server::LedgerAudit for Audit {
    async fn get_checkpoint(&self, req: Request<pb::GetCheckpointRequest>) -> Result<Response<pb::Checkpoint>, Status> {
        let _caller = self.0.admit(&req)?;
        // `anxin-min-seq`: an auditor that saw a tree of N records asks a node for at
        // least N, so a follower that lags waits rather than answering with an older one.
        self.0.reach(req.metadata()).await?;
        let cp = if req.get_ref().witnessed {
            self.0.ledger.witnessed_checkpoint().ok_or_else(|| ApiError::new(tonic::Code::FailedPrecondition, "NOT_WITNESSED", "no checkpoint of this ledger has met its witness policy yet (no policy configured, or the witnesses have not cosigned)"))?
        } else {
            self.0.ledger.checkpoint()?
        };
        Ok(super::stamped(cp.checkpoint.tree_size, checkpoint_to_pb(&cp, &self.0.ledger.public_key())))
    }

    async fn get_public_key(&self, req: Request<pb::GetPublicKeyRequest>) -> Result<Response<pb::PublicKey>, Status> {
        let _caller = self.0.admit(&req)?;
        let (id, key) = (self.0.ledger.ledger_id(), self.0.ledger.public_key());
        Ok(Response::new(pb::PublicKey { ledger_id: id.to_owned(), ed25519: key.as_bytes().to_vec(), vkey: crate::chain::checkpoint::vkey(id, &key) }))
    }

    type ReadEventsStream = RecordStream;

    async fn read_events(&self, req: Request<pb::ReadEventsRequest>) -> Result<Response<RecordStream>, Status> {
        let caller = self.0.admit(&req)?;
        self.0.reach(req.metadata()).await?;
        let r = req.into_inner();
        if r.from_seq == 0 {
            return Err(ApiError::invalid("INVALID_SEQ", "from_seq starts at 1").into());
        }
        let head = self.0.ledger.head().0;
        let to = if r.to_seq == 0 { head } else { r.to_seq.min(head) };
        if r.to_seq != 0 && r.to_seq < r.from_seq {
            return Err(ApiError::invalid("INVALID_SEQ", "to_seq is before from_seq").into());
        }
        Ok(super::stamped(to, self.0.stream_records(caller, r.from_seq, Some(to))))
    }

    async fn get_inclusion_proof(&self, req: Request<pb::GetInclusionProofRequest>) -> Result<Response<pb::InclusionProof>, Status> {
        let _caller = self.0.admit(&req)?;
        let r = req.into_inner();
        let size = if r.tree_size == 0 { self.0.ledger.checkpoint()?.checkpoint.tree_size } else { r.tree_size };
        let ledger = self.0.ledger.clone();
        let path = tokio::task::spawn_blocking(move || ledger.inclusion_proof(r.seq, size)).await.map_err(|e| ApiError::internal(e.to_string()))?.map_err(proof_err)?;
        Ok(Response::new(pb::InclusionProof { leaf_index: r.seq - 1, tree_size: size, path: path.iter().map(|h| h.to_vec()).collect() }))
    }

    async fn get_consistency_proof(&self, req: Request<pb::GetConsistencyProofRequest>) -> Result<Response<pb::ConsistencyProof>, Status> {
        let _caller = self.0.admit(&req)?;
        let r = req.into_inner();
        let to = if r.to_size == 0 { self.0.ledger.checkpoint()?.checkpoint.tree_size } else { r.to_size };
        let ledger = self.0.ledger.clone();
        let path = tokio::task::spawn_blocking(move || ledger.consistency_proof(r.from_size, to)).await.map_err(|e| ApiError::internal(e.to_string()))?.map_err(proof_err)?;
        Ok(Response::new(pb::ConsistencyProof { from_size: r.from_size, to_size: to, path: path.iter().map(|h| h.to_vec()).collect() }))
    }

    async fn get_receipt(&self, req: Request<pb::GetReceiptRequest>) -> Result<Response<pb::Receipt>, Status> {
        let caller = self.0.admit(&req)?;
        let r = req.into_inner();
        let last = if r.last_seq == 0 { r.first_seq } else { r.last_seq };
        let ledger = self.0.ledger.clone();
        let receipt = tokio::task::spawn_blocking(move || ledger.receipt(r.first_seq, last, r.witnessed)).await.map_err(|e| ApiError::internal(e.to_string()))?.map_err(proof_err)?;
        // A receipt carries the records in full: only records the caller may read (the
        // rule `ReadEvents` applies).
        let state = self.0.ledger.state()?;
        if let Some(r) = receipt.records.iter().filter_map(|b| crate::chain::record::Record::decode(b).ok()).find(|r| !super::auth::may_read_record(&caller.principal, &state, r)) {
            return Err(ApiError::denied(format!("record {} is not {}'s to read (a bank or a contractor reads the records it posted and those of its projects, never the county's casework)", r.seq, caller.principal)).into());
        }
        drop(state);
        Ok(Response::new(pb::Receipt { proof: receipt.encode(), tree_size: receipt.checkpoint.checkpoint.tree_size }))
    }

    type SubscribeStream = RecordStream;

    async fn subscribe(&self, req: Request<pb::SubscribeRequest>) -> Result<Response<RecordStream>, Status> {
        let caller = self.0.admit(&req)?;
        let r = req.into_inner();
        if r.from_seq == 0 {
            return Err(ApiError::invalid("INVALID_SEQ", "from_seq starts at 1").into());
        }
        Ok(Response::new(self.0.stream_records(caller, r.from_seq, None)))
    }
}

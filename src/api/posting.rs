//! `LedgerPosting`: Submit and SubmitStream.

use std::pin::Pin;

use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::domain::command::Command;
use crate::domain::ids::RequestId;
use crate::domain::principal::Principal;
use crate::ledger::{Receipt, SubmitResult};
use crate::limits::{BATCH_COMMANDS_MAX, STREAM_BATCHES_IN_FLIGHT_MAX};

use super::error::ApiError;
use super::{auth, convert, pb, Api};

pub struct Posting(pub Api);

fn receipt(r: &Receipt) -> pb::SubmitResponse {
    pb::SubmitResponse { first_seq: r.first_seq, last_seq: r.last_seq, chain_head: r.head.to_vec(), recorded_at_ms: r.recorded_at_ms, replayed: r.replayed }
}

fn outcome(r: SubmitResult) -> Result<pb::SubmitResponse, ApiError> {
    match r {
        Ok(Ok(rc)) => Ok(receipt(&rc)),
        Ok(Err(rej)) => Err(rej.into()),
        Err(fault) => Err(fault.into()),
    }
}

impl Api {
    /// Validates, converts and authorizes a batch: everything before the writer.
    async fn prepare(&self, who: &Principal, req: pb::SubmitRequest) -> Result<(RequestId, Vec<Command>), ApiError> {
        let request_id = RequestId::parse(&req.request_id).map_err(|e| ApiError::invalid("INVALID_REQUEST_ID", e.to_string()))?;
        if req.commands.is_empty() {
            return Err(ApiError::invalid("EMPTY_BATCH", "a batch must hold at least one command"));
        }
        if req.commands.len() > BATCH_COMMANDS_MAX {
            return Err(ApiError::new(tonic::Code::ResourceExhausted, "BATCH_TOO_LARGE", format!("a batch holds {} commands; the limit is {BATCH_COMMANDS_MAX}", req.commands.len())));
        }
        // A follower refuses before converting: no salt is made for a batch it will not
        // record (the writer decides again, against the role it has then).
        if let Some(crate::replica::Role::Follower { leader }) = self.ledger.role() {
            return Err(crate::store::StoreError::NotLeader { leader }.into());
        }
        let enrols = req.commands.iter().any(|c| matches!(c.kind, Some(pb::command::Kind::EnrolWorker(_))));
        let big = req.commands.len() > 1_000;
        let convert_all = {
            let vault = self.vault.clone();
            move || -> Result<Vec<Command>, ApiError> {
                if vault.is_replicated() {
                    // New people and cards get their salts in one database commit; an
                    // invalid number is left for the conversion below to refuse by index.
                    let (mut workers, mut cards) = (Vec::new(), Vec::new());
                    for c in &req.commands {
                        if let Some(pb::command::Kind::EnrolWorker(m)) = &c.kind {
                            workers.extend(convert::national_id(&m.national_id).ok());
                            cards.extend(convert::card(&m.bank_card).ok());
                        }
                    }
                    vault.prepare(&workers, &cards)?;
                }
                let mut out = Vec::with_capacity(req.commands.len());
                for (i, c) in req.commands.iter().enumerate() {
                    out.push(convert::command(c, &vault).map_err(|e| e.at(i))?);
                }
                vault.flush()?;
                Ok(out)
            }
        };
        // An enrolment may create a salt, written and flushed (fsync) by the vault (or, on
        // a replicated ledger, committed in the database): off the async threads. Other commands only look commitments up (mostly in the
        // vault's memory), which is cheaper here than a hand-off to a blocking thread.
        // A replicated vault may ask the database for a salt another node made.
        let commands = if enrols || big || self.vault.is_replicated() {
            tokio::task::spawn_blocking(convert_all).await.map_err(|e| ApiError::new(tonic::Code::Internal, "INTERNAL", e.to_string()))??
        } else {
            convert_all()?
        };
        // The role check, from the commands alone: a batch that can never pass does not
        // queue behind others. Authority over the very project, account or letter is
        // decided by the writer, against the state the batch is recorded on.
        auth::may_post_batch(who, &commands)?;
        Ok((request_id, commands))
    }
}

type OutStream = Pin<Box<dyn Stream<Item = Result<pb::SubmitStreamResponse, Status>> + Send>>;

enum InFlight {
    Ready(String, Result<pb::SubmitResponse, ApiError>),
    Waiting(String, oneshot::Receiver<SubmitResult>),
}

#[tonic::async_trait]
impl pb::ledger_posting_server::LedgerPosting for Posting {
    async fn submit(&self, req: Request<pb::SubmitRequest>) -> Result<Response<pb::SubmitResponse>, Status> {
        let caller = self.0.admit(&req)?;
        let who = caller.principal.clone();
        let (request_id, commands) = self.0.prepare(&who, req.into_inner()).await?;
        let r = self.0.ledger.submit_async(who, request_id, commands).await;
        Ok(Response::new(outcome(r)?))
    }

    type SubmitStreamStream = OutStream;

    async fn submit_stream(&self, req: Request<Streaming<pb::SubmitRequest>>) -> Result<Response<OutStream>, Status> {
        let caller = self.0.admit(&req)?;
        let who = caller.principal.clone();
        let mut incoming = req.into_inner();
        let api = self.0.clone();
        let ledger = self.0.ledger.clone();
        // Batches are queued to the writer in the order they arrive (so they are decided
        // in that order) while earlier ones are still being made durable; answers go
        // back in the same order. At most STREAM_BATCHES_IN_FLIGHT_MAX wait at once.
        let (flight_tx, mut flight_rx) = mpsc::channel::<InFlight>(STREAM_BATCHES_IN_FLIGHT_MAX);
        let (out_tx, out_rx) = mpsc::channel::<Result<pb::SubmitStreamResponse, Status>>(STREAM_BATCHES_IN_FLIGHT_MAX);
        tokio::spawn(async move {
            // The caller's place is held while the stream is read.
            let _caller = caller;
            while let Some(item) = incoming.next().await {
                let req = match item {
                    Ok(r) => r,
                    Err(_) => break, // the client went away or sent garbage: stop reading
                };
                let id = req.request_id.clone();
                let flight = match api.prepare(&who, req).await {
                    Err(e) => InFlight::Ready(id, Err(e)),
                    Ok((rid, cmds)) => match api.ledger.enqueue(who.clone(), rid, cmds).await {
                        Ok(rx) => InFlight::Waiting(id, rx),
                        Err(e) => InFlight::Ready(id, Err(e.into())),
                    },
                };
                if flight_tx.send(flight).await.is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            while let Some(f) = flight_rx.recv().await {
                let (id, result) = match f {
                    InFlight::Ready(id, r) => (id, r),
                    InFlight::Waiting(id, rx) => (id, rx.await.map_err(|_| ledger.unanswered().into()).and_then(outcome)),
                };
                let outcome = match result {
                    Ok(r) => pb::submit_stream_response::Outcome::Receipt(r),
                    Err(e) => pb::submit_stream_response::Outcome::Refusal(pb::Refusal {
                        status_code: e.code as i32,
                        reason: e.reason.to_owned(),
                        message: e.message().to_owned(),
                        command_index: e.index.map_or(-1, |i| i32::try_from(i).unwrap_or(i32::MAX)),
                        field: e.field_path().unwrap_or_default(),
                        action: e.action().unwrap_or_default().to_owned(),
                        retry_after_ms: e.retry_delay().map_or(0, |d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX)),
                    }),
                };
                if out_tx.send(Ok(pb::SubmitStreamResponse { request_id: id, outcome: Some(outcome) })).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(out_rx))))
    }
}

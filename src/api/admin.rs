//! `LedgerAdmin`: the operator's online backup, streamed as it is written.

use std::pin::Pin;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::domain::principal::Principal;

use super::error::ApiError;
use super::{pb, Api};

pub struct Admin(pub Api);

type ChunkStream = Pin<Box<dyn Stream<Item = Result<pb::BackupChunk, Status>> + Send>>;

/// Bytes per chunk sent.
const CHUNK_BYTES: usize = 1 << 20;
/// Chunks buffered before the backup waits for the client to read.
const CHUNKS_BUFFERED: usize = 8;

/// A `Write` that sends full chunks down the stream, waiting while the client is behind;
/// a client that went away makes the next write fail, which ends the backup.
struct ChunkSender {
    tx: mpsc::Sender<Result<pb::BackupChunk, Status>>,
    buf: Vec<u8>,
}

impl ChunkSender {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_BYTES));
        self.tx.blocking_send(Ok(pb::BackupChunk { data })).map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client stopped reading the backup"))
    }
}

impl std::io::Write for ChunkSender {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= CHUNK_BYTES {
            self.send()?;
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

#[tonic::async_trait]
impl pb::ledger_admin_server::LedgerAdmin for Admin {
    type BackupStream = ChunkStream;

    async fn backup(&self, req: Request<pb::BackupRequest>) -> Result<Response<ChunkStream>, Status> {
        let caller = self.0.admit(&req)?;
        let who = caller.principal.clone();
        if who != Principal::Operator {
            return Err(ApiError::denied(format!("{who} may not take a backup: it holds the signing key and the vault (operator only)")).into());
        }
        let (tx, rx) = mpsc::channel(CHUNKS_BUFFERED);
        let (ledger, vault) = (self.0.ledger.clone(), self.0.vault.clone());
        tokio::task::spawn_blocking(move || {
            let _caller = caller;
            let mut out = ChunkSender { tx: tx.clone(), buf: Vec::with_capacity(CHUNK_BYTES) };
            match crate::backup::write_backup(&ledger, &vault, &mut out) {
                Ok(s) => tracing::info!(records = s.records, salts = s.salts, bytes = s.bytes, "backup served"),
                Err(e) => {
                    tracing::error!(error = %e, "backup failed");
                    let _ = tx.blocking_send(Err(ApiError::new(tonic::Code::Unavailable, "BACKUP_FAILED", format!("backup failed: {e}")).into()));
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

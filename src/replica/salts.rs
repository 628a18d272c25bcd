//! The vault's salts of a replicated ledger, in PostgreSQL (`anxin_salt`).
//!
//! A record carries a worker's or a card's commitment, `BLAKE3-keyed(secret, salt, value)`
//! (`crate::vault`). On one machine the salts live in the vault's own store; a replicated
//! ledger must not lose them with a machine, nor let two nodes give one person two
//! salts: after a failover the new leader would then commit a re-sent enrolment
//! differently (a second worker, and the retry of an acknowledged request refused as a
//! different one), and a follower could not find a worker by national ID.
//!
//! So the salts are rows `(ledger, lookup, salt)`, inserted with the same synchronous
//! commit as the frames (a salt is on both database machines before any record that
//! carries its commitment is decided), and the database decides between two nodes
//! racing for the first salt of a person (`ON CONFLICT DO NOTHING`, then the stored one).
//! The rows hold keyed hashes and random salts only: without the vault's secret, which
//! the nodes share as they share the signing key and which never enters the database,
//! nothing in them links to a person. `anxin_ledger.vault_check`, a keyed hash of the
//! secret, makes a node with another secret refuse to join.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use postgres::Client;

use super::pg::{self, PgError};

/// The statements that keep the salts (created with the other tables: `pg::SCHEMA`).
pub(crate) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS anxin_salt (
    ledger text NOT NULL REFERENCES anxin_ledger (ledger),
    lookup bytea NOT NULL,
    salt   bytea NOT NULL,
    PRIMARY KEY (ledger, lookup)
);
ALTER TABLE anxin_ledger ADD COLUMN IF NOT EXISTS vault_check bytea;
"#;

/// A connection to the database's salts of one ledger. Used from blocking threads only
/// (the synchronous client must not run on an async runtime's thread).
pub struct RemoteSalts {
    dsns: Vec<String>,
    ledger: String,
    client: Option<Client>,
    /// Raised by the server's warning that a commit stopped waiting for the standby.
    unconfirmed: Arc<AtomicBool>,
}

impl Drop for RemoteSalts {
    /// The synchronous client closes its connection by blocking on a runtime of its own,
    /// which panics on an async runtime's thread: the vault is dropped on one when the
    /// server stops. So the connection is closed on a thread of its own.
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            let _ = std::thread::spawn(move || drop(c)).join();
        }
    }
}

impl RemoteSalts {
    /// Connects, and checks that the vault's secret is the ledger's: the first node's
    /// `check` is stored, any other must equal it.
    ///
    /// # Errors
    /// `Setup` for another secret (or a ledger the database does not know yet: the
    /// ledger registers first); as the database's.
    pub fn connect(dsns: &[String], ledger: &str, check: &[u8; 32]) -> Result<RemoteSalts, PgError> {
        let mut r = RemoteSalts { dsns: dsns.to_vec(), ledger: ledger.to_owned(), client: None, unconfirmed: Arc::new(AtomicBool::new(false)) };
        let c = r.client()?;
        c.execute("UPDATE anxin_ledger SET vault_check = $2 WHERE ledger = $1 AND vault_check IS NULL", &[&ledger, &check.as_slice()])?;
        let theirs: Option<Vec<u8>> = c
            .query_opt("SELECT vault_check FROM anxin_ledger WHERE ledger = $1", &[&ledger])?
            .ok_or_else(|| PgError::Setup(format!("ledger {ledger:?} is not in the database")))?
            .get(0);
        if theirs.as_deref() != Some(check.as_slice()) {
            return Err(PgError::Setup(format!(
                "this node's vault secret is not ledger {ledger:?}'s: the nodes of one ledger share it (vault_key = a copy of the same file on every node); with another one the same worker would get two commitments"
            )));
        }
        Ok(r)
    }

    fn client(&mut self) -> Result<&mut Client, PgError> {
        if self.client.as_mut().is_none_or(|c| c.is_closed()) {
            let mut c = pg::connect_watching(&self.dsns, Duration::from_secs(2), Some(self.unconfirmed.clone()))?;
            pg::configure_session(&mut c, Duration::from_secs(2), true)?;
            self.client = Some(c);
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    /// Runs `f` on a connection, once again on a new one if the connection failed (a
    /// database failover in between).
    fn with<T>(&mut self, f: impl Fn(&mut Client, &str) -> Result<T, PgError>) -> Result<T, PgError> {
        let ledger = self.ledger.clone();
        match f(self.client()?, &ledger) {
            Err(PgError::Connection(_)) => {
                self.client = None;
                f(self.client()?, &ledger)
            }
            r => r,
        }
    }

    /// Runs `f` in a transaction (as `with`) whose commit waits for the synchronous
    /// standby even if it writes nothing: PostgreSQL shows a commit to other sessions
    /// before its standby confirms it, and only a commit with a transaction id waits
    /// (`pg_current_xact_id()` gives it one). Once it returns, the standby holds
    /// everything committed before it, so a salt read or found in it is on both
    /// machines.
    ///
    /// # Errors
    /// As the database's; `Connection` if the commit's wait for the standby was given up.
    fn confirmed<T>(&mut self, f: impl Fn(&mut postgres::Transaction<'_>, &str) -> Result<T, PgError>) -> Result<T, PgError> {
        let out = self.with(|c, ledger| {
            let mut tx = c.transaction()?;
            tx.execute("SELECT pg_current_xact_id()", &[])?;
            let out = f(&mut tx, ledger)?;
            tx.commit().map_err(|e| PgError::Connection(format!("the commit did not return: {e}")))?;
            Ok(out)
        })?;
        if self.unconfirmed.swap(false, Ordering::AcqRel) {
            return Err(PgError::Connection("a commit stopped waiting for the synchronous standby".into()));
        }
        Ok(out)
    }

    /// The salt stored for `lookup`, if any.
    ///
    /// # Errors
    /// As `confirmed`.
    pub fn get(&mut self, lookup: &[u8; 32]) -> Result<Option<Vec<u8>>, PgError> {
        self.confirmed(|tx, ledger| Ok(tx.query_opt("SELECT salt FROM anxin_salt WHERE ledger = $1 AND lookup = $2", &[&ledger, &lookup.as_slice()])?.map(|r| r.get(0))))
    }

    /// Stores each `(lookup, salt)` unless the lookup has one, in one transaction (an
    /// enrolment of a thousand workers is one commit, not two thousand), and returns the
    /// salt stored for each (ours, or the one another node stored first), in order, once
    /// the synchronous standby holds them.
    ///
    /// # Errors
    /// As `confirmed`.
    pub fn put_many(&mut self, pairs: &[([u8; 32], [u8; 32])]) -> Result<Vec<Vec<u8>>, PgError> {
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        // In one order on every node: two batches with the same new people lock their
        // rows in the same order and never deadlock.
        let mut sorted: Vec<&([u8; 32], [u8; 32])> = pairs.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let lookups: Vec<&[u8]> = sorted.iter().map(|(l, _)| l.as_slice()).collect();
        let salts: Vec<&[u8]> = sorted.iter().map(|(_, s)| s.as_slice()).collect();
        self.confirmed(|tx, ledger| {
            tx.execute(
                "INSERT INTO anxin_salt (ledger, lookup, salt) SELECT $1, l, s FROM unnest($2::bytea[], $3::bytea[]) AS t(l, s) ON CONFLICT DO NOTHING",
                &[&ledger, &lookups, &salts],
            )?;
            let rows = tx.query("SELECT lookup, salt FROM anxin_salt WHERE ledger = $1 AND lookup = ANY($2)", &[&ledger, &lookups])?;
            let found: std::collections::HashMap<Vec<u8>, Vec<u8>> = rows.into_iter().map(|r| (r.get(0), r.get(1))).collect();
            pairs.iter().map(|(l, _)| found.get(l.as_slice()).cloned().ok_or_else(|| PgError::Refused("a salt just stored is not there".into()))).collect()
        })
    }

    /// Every (lookup, salt) of the ledger, for a backup or a new node's vault.
    ///
    /// # Errors
    /// As `confirmed`.
    pub fn all(&mut self) -> Result<Vec<(Vec<u8>, Vec<u8>)>, PgError> {
        self.confirmed(|tx, ledger| Ok(tx.query("SELECT lookup, salt FROM anxin_salt WHERE ledger = $1 ORDER BY lookup", &[&ledger])?.into_iter().map(|r| (r.get(0), r.get(1))).collect()))
    }

    /// Deletes the salt of `lookup` (crypto-shredding a worker).
    ///
    /// # Errors
    /// As the database's.
    pub fn forget(&mut self, lookup: &[u8; 32]) -> Result<bool, PgError> {
        self.with(|c, ledger| Ok(c.execute("DELETE FROM anxin_salt WHERE ledger = $1 AND lookup = $2", &[&ledger, &lookup.as_slice()])? == 1))
    }
}

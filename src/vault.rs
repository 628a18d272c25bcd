//! The PII vault: turns national IDs and bank card numbers into keyed commitments.
//!
//! Clear personal data never reaches a record. At the edge, a national ID or card
//! number is validated, then replaced by `BLAKE3-keyed(secret, "commit" | kind | salt | value)`
//! with a per-ledger secret and a random per-subject salt, both kept here, off the log.
//! A lookup key `BLAKE3-keyed(secret, "lookup" | kind | value)` finds the salt again, so the
//! same person always gets the same commitment. Forgetting a subject (crypto-shredding,
//! after the retention period) deletes its salt and lookup key: the commitments in the
//! log stay, and the chain still verifies, but nothing links them to the person.
//!
//! The vault is not derived from the log: back it up with the log.
//!
//! Layout: `vault/secret.key` (32 bytes, mode 0600) and `vault/salts/` (sled).

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::domain::ids::{BankCard, Commitment, NationalId};
use crate::store::StoreError;

pub struct Vault {
    secret: [u8; 32],
    salts: sled::Db,
    /// Salts created since the last `flush`.
    unflushed: std::sync::atomic::AtomicBool,
}

#[derive(Clone, Copy)]
enum Kind {
    Worker,
    Card,
}

impl Kind {
    fn tag(self) -> &'static [u8] {
        match self {
            Kind::Worker => b"worker\0",
            Kind::Card => b"card\0",
        }
    }
}

impl Vault {
    /// Opens the vault in `dir`, creating the secret on first use.
    ///
    /// # Errors
    /// `StoreError` if the secret cannot be read or created, or sled fails.
    pub fn open(dir: &Path) -> Result<Vault, StoreError> {
        crate::fsutil::create_private_dir(dir)?;
        let key_path = dir.join("secret.key");
        let secret = if key_path.exists() {
            let bytes = fs::read(&key_path)?;
            bytes.try_into().map_err(|_| StoreError::DataDir(format!("{} is not 32 bytes", key_path.display())))?
        } else {
            let mut s = [0u8; 32];
            getrandom::getrandom(&mut s).map_err(|e| StoreError::DataDir(format!("no randomness: {e}")))?;
            let mut f = crate::fsutil::create_private_file(&key_path)?;
            f.write_all(&s)?;
            f.sync_all()?;
            crate::fsutil::sync_dir(dir)?;
            s
        };
        let salts = crate::store::open_sled(&sled::Config::new().path(dir.join("salts")).flush_every_ms(None))?;
        Ok(Vault { secret, salts, unflushed: std::sync::atomic::AtomicBool::new(false) })
    }

    fn keyed(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(&self.secret);
        for p in parts {
            h.update(&(p.len() as u32).to_be_bytes());
            h.update(p);
        }
        *h.finalize().as_bytes()
    }

    fn commit(&self, kind: Kind, value: &str) -> Result<Commitment, StoreError> {
        let lookup = self.keyed(&[b"lookup", kind.tag(), value.as_bytes()]);
        let salt: [u8; 32] = match self.salts.get(lookup)? {
            Some(s) => s.as_ref().try_into().map_err(|_| StoreError::DataDir("vault salt is not 32 bytes".into()))?,
            None => {
                let mut s = [0u8; 32];
                getrandom::getrandom(&mut s).map_err(|e| StoreError::DataDir(format!("no randomness: {e}")))?;
                // compare_and_swap so that two concurrent first uses agree on one salt.
                match self.salts.compare_and_swap(lookup, None as Option<&[u8]>, Some(&s[..]))? {
                    Ok(()) => {
                        // Durable at the next `flush`, which callers make before submitting
                        // any record that carries this commitment.
                        self.unflushed.store(true, std::sync::atomic::Ordering::SeqCst);
                        s
                    }
                    Err(cas) => cas.current.expect("someone else stored it").as_ref().try_into().expect("32 bytes"),
                }
            }
        };
        Ok(Commitment(self.keyed(&[b"commit", kind.tag(), &salt, value.as_bytes()])))
    }

    /// Makes every salt created so far durable. Call it before submitting commands
    /// converted with `worker` or `card`: a record must never carry a commitment whose
    /// salt a crash could lose.
    ///
    /// # Errors
    /// `StoreError` if sled cannot flush.
    pub fn flush(&self) -> Result<(), StoreError> {
        if self.unflushed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            if let Err(e) = self.salts.flush() {
                self.unflushed.store(true, std::sync::atomic::Ordering::SeqCst);
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// The commitment for a worker's national ID, and its masked form.
    ///
    /// # Errors
    /// `StoreError` if the vault cannot be read or written.
    pub fn worker(&self, id: &NationalId) -> Result<(Commitment, String), StoreError> {
        Ok((self.commit(Kind::Worker, id.expose_clear())?, id.masked()))
    }

    /// The commitment for a bank card, and its masked form.
    ///
    /// # Errors
    /// `StoreError` if the vault cannot be read or written.
    pub fn card(&self, card: &BankCard) -> Result<(Commitment, String), StoreError> {
        Ok((self.commit(Kind::Card, card.expose_clear())?, card.masked()))
    }

    /// The existing commitment for a national ID, without creating one.
    pub fn find_worker(&self, id: &NationalId) -> Result<Option<Commitment>, StoreError> {
        let lookup = self.keyed(&[b"lookup", Kind::Worker.tag(), id.expose_clear().as_bytes()]);
        let Some(salt) = self.salts.get(lookup)? else { return Ok(None) };
        Ok(Some(Commitment(self.keyed(&[b"commit", Kind::Worker.tag(), &salt, id.expose_clear().as_bytes()]))))
    }

    /// The commitment of a national ID already known to the vault or, for one never
    /// seen, a phantom commitment that no record carries (keyed, unsalted, with its own
    /// tag): the rules then refuse it as "not enrolled", and the vault stores nothing.
    pub fn worker_or_phantom(&self, id: &NationalId) -> Result<Commitment, StoreError> {
        match self.find_worker(id)? {
            Some(c) => Ok(c),
            None => Ok(Commitment(self.keyed(&[b"phantom", Kind::Worker.tag(), id.expose_clear().as_bytes()]))),
        }
    }

    /// The commitment of a card already known to the vault, or a phantom one (as above).
    pub fn card_or_phantom(&self, card: &BankCard) -> Result<Commitment, StoreError> {
        let lookup = self.keyed(&[b"lookup", Kind::Card.tag(), card.expose_clear().as_bytes()]);
        match self.salts.get(lookup)? {
            Some(salt) => Ok(Commitment(self.keyed(&[b"commit", Kind::Card.tag(), &salt, card.expose_clear().as_bytes()]))),
            None => Ok(Commitment(self.keyed(&[b"phantom", Kind::Card.tag(), card.expose_clear().as_bytes()]))),
        }
    }

    /// Forgets a worker (crypto-shredding): their commitment can no longer be linked to them.
    pub fn forget_worker(&self, id: &NationalId) -> Result<bool, StoreError> {
        let lookup = self.keyed(&[b"lookup", Kind::Worker.tag(), id.expose_clear().as_bytes()]);
        let existed = self.salts.remove(lookup)?.is_some();
        self.salts.flush()?;
        Ok(existed)
    }
}

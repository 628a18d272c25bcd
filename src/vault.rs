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
use std::path::Path;

use crate::domain::ids::{BankCard, Commitment, NationalId};
use crate::store::StoreError;

pub struct Vault {
    secret: [u8; 32],
    salts: sled::Db,
    /// Salts created since the last `flush`.
    unflushed: std::sync::atomic::AtomicBool,
    /// Commitments already computed, by lookup key (itself a keyed hash: no clear data
    /// here), so that a payroll run's thousands of payouts to known cards skip sled.
    /// Bounded: emptied when full. Only durable salts enter it (see `flush`).
    cache: std::sync::RwLock<std::collections::HashMap<[u8; 32], Commitment>>,
    /// Bumped (under the cache's write lock) by every forget, so that a lookup that read
    /// a salt before a forget cannot put it back into the cache after.
    forgets: std::sync::atomic::AtomicU64,
    /// A replicated ledger's salts in its database (`crate::replica::salts`): the store
    /// of record, which `salts` above then copies.
    remote: Option<std::sync::Mutex<crate::replica::salts::RemoteSalts>>,
}

/// Entries the commitment cache holds at most (about 70 bytes each).
const CACHE_ENTRIES_MAX: usize = 200_000;

/// A salt read back from `vault/salts`: 32 bytes, or the vault is damaged.
fn salt_of(bytes: &[u8]) -> Result<[u8; 32], StoreError> {
    bytes.try_into().map_err(|_| StoreError::DataDir(format!("a salt in vault/salts has {} bytes, not 32: the vault is damaged; restore it from a backup", bytes.len())))
}

/// The replicated ledger's database failing a vault call.
fn remote_error(e: crate::replica::PgError) -> StoreError {
    StoreError::DatabaseUnavailable(e.to_string())
}

/// 32 random bytes: a new salt (or secret).
fn random_32() -> Result<[u8; 32], StoreError> {
    let mut s = [0u8; 32];
    getrandom::getrandom(&mut s).map_err(|e| StoreError::DataDir(format!("no randomness: {e}")))?;
    Ok(s)
}

/// Salts written straight into the `salts` store of a new vault (a restore), made
/// durable once at the end.
pub(crate) struct SaltLoader {
    salts: sled::Db,
}

impl SaltLoader {
    /// Opens `<vault dir>/salts` for a restore.
    pub(crate) fn create(vault_dir: &Path) -> Result<SaltLoader, StoreError> {
        Ok(SaltLoader { salts: crate::store::open_sled(&sled::Config::new().path(vault_dir.join("salts")).flush_every_ms(None))? })
    }

    pub(crate) fn insert(&self, lookup: &[u8], salt: &[u8]) -> Result<(), StoreError> {
        salt_of(salt)?;
        self.salts.insert(lookup, salt)?;
        Ok(())
    }

    /// Makes every salt durable and closes the store.
    pub(crate) fn finish(self) -> Result<(), StoreError> {
        self.salts.flush()?;
        Ok(())
    }
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
        Vault::open_for(dir, false)
    }

    /// Opens the vault of a ledger that already holds `workers`: if it has any, a vault
    /// without its key or its salts is damage (every worker would become unknown, and
    /// enrolling one again would make a second worker), so it is refused, not recreated.
    ///
    /// # Errors
    /// `StoreError::DataDir` naming what is missing.
    pub fn open_for(dir: &Path, has_workers: bool) -> Result<Vault, StoreError> {
        Vault::open_with(dir, None, has_workers, None)
    }

    /// `open_for`, with the secret in `secret_file` (default `<dir>/secret.key`), and, for
    /// a node of a replicated ledger, its salts in the database of `replicated` (DSNs,
    /// ledger id): the database's salts are copied in, the vault's own that it lacks are
    /// put there, and every new salt goes there first. The nodes of one ledger share the
    /// secret; a node with another one is refused.
    ///
    /// # Errors
    /// `StoreError::DataDir` naming what is missing or disagrees;
    /// `StoreError::DatabaseUnavailable` if the database cannot be reached.
    pub fn open_with(dir: &Path, secret_file: Option<&Path>, has_workers: bool, replicated: Option<(&[String], &str)>) -> Result<Vault, StoreError> {
        let missing = |what: &str| {
            StoreError::DataDir(format!("{what} is missing but the ledger has enrolled workers: restore the vault from a backup (a new one would not know them)"))
        };
        let key_path = secret_file.map_or_else(|| dir.join("secret.key"), Path::to_path_buf);
        if has_workers && !key_path.exists() {
            return Err(missing(&key_path.display().to_string()));
        }
        crate::fsutil::create_private_dir(dir)?;
        let secret = if key_path.exists() {
            let bytes = fs::read(&key_path)?;
            bytes.try_into().map_err(|_| StoreError::DataDir(format!("{} is not 32 bytes", key_path.display())))?
        } else {
            let s = random_32()?;
            crate::fsutil::write_atomic(&key_path, &s, "vault")?;
            s
        };
        if has_workers && replicated.is_none() && !dir.join("salts").exists() {
            return Err(missing(&dir.join("salts").display().to_string()));
        }
        let salts = crate::store::open_sled(&sled::Config::new().path(dir.join("salts")).flush_every_ms(None))?;
        let mut vault = Vault { secret, salts, unflushed: std::sync::atomic::AtomicBool::new(false), cache: Default::default(), forgets: std::sync::atomic::AtomicU64::new(0), remote: None };
        if let Some((dsns, ledger)) = replicated {
            // On a thread of its own: the database's synchronous client must not run on
            // an async runtime's thread (the server opens the vault from one).
            std::thread::scope(|s| s.spawn(|| vault.join(dsns, ledger)).join()).map_err(|_| StoreError::DataDir("joining the replicated vault panicked".into()))??;
        }
        if has_workers && vault.salts.is_empty() {
            return Err(missing(&format!("every entry of {}", dir.join("salts").display())));
        }
        Ok(vault)
    }

    /// Joins the replicated ledger's salts (see `open_with`).
    fn join(&mut self, dsns: &[String], ledger: &str) -> Result<(), StoreError> {
        let check = self.keyed(&[b"vault-check", ledger.as_bytes()]);
        let unreachable = |e: crate::replica::PgError| match e {
            crate::replica::PgError::Setup(why) => StoreError::DataDir(why),
            e => StoreError::DatabaseUnavailable(e.to_string()),
        };
        let remote = crate::replica::salts::RemoteSalts::connect(dsns, ledger, &check).map_err(unreachable)?;
        self.remote = Some(std::sync::Mutex::new(remote));
        // The database is the store of record: its salt wins over a local copy that
        // differs (a salt whose commit a database failover lost: no record carries it,
        // since a record's commit waits for everything before it).
        let theirs = self.copy_all_in()?;
        let local_only: Vec<sled::IVec> = self.salts.iter().keys().filter_map(Result::ok).filter(|k| !theirs.contains(&k[..])).collect();
        if theirs.is_empty() {
            // The first vault of the ledger (say a ledger that ran on one machine before
            // it was replicated): its salts become the database's.
            let mut mine = Vec::with_capacity(local_only.len());
            for lookup in &local_only {
                let Some(salt) = self.salts.get(lookup)? else { continue };
                mine.push((lookup[..].try_into().map_err(|_| StoreError::DataDir("a lookup key in vault/salts is not 32 bytes".into()))?, salt_of(&salt)?));
            }
            self.remote_put(&mine)?;
        } else {
            // Salts the database does not have were forgotten (crypto-shredding on
            // another node) or lost with an unconfirmed commit: forgotten here too.
            for lookup in &local_only {
                self.salts.remove(lookup)?;
            }
            if !local_only.is_empty() {
                tracing::info!(salts = local_only.len(), "vault: forgot salts the replicated ledger no longer holds");
            }
        }
        self.salts.flush()?;
        tracing::info!(salts = theirs.len(), "vault: joined the replicated ledger's salts");
        Ok(())
    }

    /// Copies every salt of the replicated ledger's database into the local store (the
    /// database's wins: `copy_in`), and returns their lookup keys.
    fn copy_all_in(&self) -> Result<std::collections::HashSet<Vec<u8>>, StoreError> {
        let Some(remote) = &self.remote else { return Ok(Default::default()) };
        let all = remote.lock().unwrap_or_else(std::sync::PoisonError::into_inner).all().map_err(remote_error)?;
        let mut keys = std::collections::HashSet::with_capacity(all.len());
        for (lookup, salt) in all {
            let key: [u8; 32] = lookup[..].try_into().map_err(|_| StoreError::DataDir("a lookup key in the database is not 32 bytes".into()))?;
            self.copy_in(&key, &salt_of(&salt)?)?;
            keys.insert(lookup);
        }
        Ok(keys)
    }

    /// Stores new `(lookup, salt)` pairs in the replicated ledger's database in one commit
    /// (the database keeps a salt another node stored first) and copies what it holds into
    /// the local store.
    fn remote_put(&self, pairs: &[([u8; 32], [u8; 32])]) -> Result<(), StoreError> {
        let Some(remote) = &self.remote else { return Ok(()) };
        if pairs.is_empty() {
            return Ok(());
        }
        let stored = remote.lock().unwrap_or_else(std::sync::PoisonError::into_inner).put_many(pairs).map_err(remote_error)?;
        for ((lookup, _), salt) in pairs.iter().zip(stored) {
            self.copy_in(lookup, &salt_of(&salt)?)?;
        }
        Ok(())
    }

    /// Whether lookups may reach the database (then: call from a blocking thread).
    pub fn is_replicated(&self) -> bool {
        self.remote.is_some()
    }

    /// The database's salt for `lookup`, copied into the local store; `None` if it has
    /// none or the vault is not replicated.
    fn remote_get(&self, lookup: &[u8; 32]) -> Result<Option<[u8; 32]>, StoreError> {
        let Some(remote) = &self.remote else { return Ok(None) };
        let got = remote.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(lookup).map_err(remote_error)?;
        let Some(salt) = got else { return Ok(None) };
        let salt = salt_of(&salt)?;
        self.copy_in(lookup, &salt)?;
        Ok(Some(salt))
    }

    /// Keeps the database's `salt` in the local store too.
    /// A local copy that differs is replaced (the database is the store of record; see
    /// `join`), and the commitment cache emptied so that it is not used again.
    fn copy_in(&self, lookup: &[u8; 32], salt: &[u8; 32]) -> Result<(), StoreError> {
        if let Err(cas) = self.salts.compare_and_swap(lookup, None as Option<&[u8]>, Some(&salt[..]))? {
            if cas.current.as_deref() != Some(&salt[..]) {
                tracing::warn!("vault: a local salt differed from the replicated ledger's; the database's is kept");
                let mut cache = self.cache.write().unwrap_or_else(std::sync::PoisonError::into_inner);
                self.salts.insert(lookup, &salt[..])?;
                self.forgets.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                cache.clear();
            }
        }
        self.unflushed.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// The secret, for a backup (`crate::backup`) only.
    pub(crate) fn secret(&self) -> [u8; 32] {
        self.secret
    }

    /// A replicated vault copies the database's salts in first (another node may have
    /// made some this one never looked up).
    ///
    /// # Errors
    /// As the database's.
    pub(crate) fn refresh(&self) -> Result<(), StoreError> {
        self.copy_all_in()?;
        self.flush()
    }

    /// Every (lookup key, salt) of the local store (after `refresh`), for a backup: keyed
    /// hashes and random salts, no clear personal data.
    pub(crate) fn salt_entries(&self) -> impl Iterator<Item = Result<(sled::IVec, sled::IVec), StoreError>> + '_ {
        self.salts.iter().map(|r| r.map_err(StoreError::from))
    }

    fn keyed(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(&self.secret);
        for p in parts {
            h.update(&(p.len() as u32).to_be_bytes());
            h.update(p);
        }
        *h.finalize().as_bytes()
    }

    fn cached(&self, lookup: &[u8; 32]) -> Option<Commitment> {
        self.cache.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(lookup).copied()
    }

    fn remember(&self, lookup: [u8; 32], c: Commitment, forgets_before: u64) {
        let mut cache = self.cache.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.forgets.load(std::sync::atomic::Ordering::SeqCst) != forgets_before {
            return;
        }
        if cache.len() >= CACHE_ENTRIES_MAX {
            cache.clear();
        }
        cache.insert(lookup, c);
    }

    /// The commitment of an existing salt for `lookup`, if there is one.
    fn existing(&self, kind: Kind, lookup: [u8; 32], value: &str) -> Result<Option<Commitment>, StoreError> {
        if let Some(c) = self.cached(&lookup) {
            return Ok(Some(c));
        }
        let forgets_before = self.forgets.load(std::sync::atomic::Ordering::SeqCst);
        let salt = match self.salts.get(lookup)? {
            Some(s) => salt_of(&s)?,
            None => match self.remote_get(&lookup)? {
                Some(s) => s,
                None => return Ok(None),
            },
        };
        let c = Commitment(self.keyed(&[b"commit", kind.tag(), &salt, value.as_bytes()]));
        // A salt read back may still be unflushed (created a moment ago by another
        // request): cache only once everything created so far is durable.
        if !self.unflushed.load(std::sync::atomic::Ordering::SeqCst) {
            self.remember(lookup, c, forgets_before);
        }
        Ok(Some(c))
    }

    fn commit(&self, kind: Kind, value: &str) -> Result<Commitment, StoreError> {
        let lookup = self.keyed(&[b"lookup", kind.tag(), value.as_bytes()]);
        if let Some(c) = self.existing(kind, lookup, value)? {
            return Ok(c);
        }
        let salt: [u8; 32] = match self.salts.get(lookup)? {
            Some(s) => salt_of(&s)?,
            None if self.remote.is_some() => {
                // The database decides (ours, or the one another node stored first); it
                // holds it on both of its machines before any record carries it.
                self.remote_put(&[(lookup, random_32()?)])?;
                let stored = self.salts.get(lookup)?.ok_or_else(|| StoreError::Index("a salt just copied from the database is not in vault/salts".into()))?;
                salt_of(&stored)?
            }
            None => {
                let s = random_32()?;
                // compare_and_swap so that two concurrent first uses agree on one salt.
                match self.salts.compare_and_swap(lookup, None as Option<&[u8]>, Some(&s[..]))? {
                    Ok(()) => {
                        // Durable at the next `flush`, which callers make before submitting
                        // any record that carries this commitment.
                        self.unflushed.store(true, std::sync::atomic::Ordering::SeqCst);
                        s
                    }
                    // Another request stored one first: use it (sled's compare-and-swap
                    // fails only when a value is there).
                    Err(cas) => match cas.current {
                        Some(theirs) => salt_of(&theirs)?,
                        None => return Err(StoreError::Index("the vault's compare-and-swap failed with no salt stored".into())),
                    },
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

    /// Makes sure the salts of these workers and cards exist, creating the missing ones
    /// together: on a replicated ledger, in one database commit (otherwise one round trip
    /// per new person and card). The commitments are then found locally. A no-op for a
    /// vault of one machine (its salts cost no round trip).
    ///
    /// # Errors
    /// `StoreError` if the database or the local store fails.
    pub fn prepare(&self, workers: &[NationalId], cards: &[BankCard]) -> Result<(), StoreError> {
        if self.remote.is_none() {
            return Ok(());
        }
        let mut missing: Vec<([u8; 32], [u8; 32])> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let wanted = workers.iter().map(|w| (Kind::Worker, w.expose_clear())).chain(cards.iter().map(|c| (Kind::Card, c.expose_clear())));
        for (kind, value) in wanted {
            let lookup = self.keyed(&[b"lookup", kind.tag(), value.as_bytes()]);
            if !seen.insert(lookup) || self.cached(&lookup).is_some() || self.salts.contains_key(lookup)? {
                continue;
            }
            missing.push((lookup, random_32()?));
        }
        self.remote_put(&missing)
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
        self.existing(Kind::Worker, lookup, id.expose_clear())
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
        match self.existing(Kind::Card, lookup, card.expose_clear())? {
            Some(c) => Ok(c),
            None => Ok(Commitment(self.keyed(&[b"phantom", Kind::Card.tag(), card.expose_clear().as_bytes()]))),
        }
    }

    /// Forgets a worker (crypto-shredding): their commitment can no longer be linked to them.
    pub fn forget_worker(&self, id: &NationalId) -> Result<bool, StoreError> {
        let lookup = self.keyed(&[b"lookup", Kind::Worker.tag(), id.expose_clear().as_bytes()]);
        let existed = {
            let mut cache = self.cache.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut existed = self.salts.remove(lookup)?.is_some();
            if let Some(remote) = &self.remote {
                // The store of record. (Other nodes drop their local copies at their
                // next start, `join`: until then they can still link.)
                existed |= remote.lock().unwrap_or_else(std::sync::PoisonError::into_inner).forget(&lookup).map_err(remote_error)?;
            }
            // After the removal: a lookup that read the salt before it sees the bump.
            self.forgets.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            cache.remove(&lookup);
            existed
        };
        self.salts.flush()?;
        Ok(existed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commitments_are_stable_cached_and_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let v = Vault::open(dir.path()).unwrap();
        let id = NationalId::with_check("62012119800101123");
        let card = BankCard::with_check("621700000000500001");
        assert_eq!(v.find_worker(&id).unwrap(), None);
        let phantom = v.worker_or_phantom(&id).unwrap();
        let (c, masked) = v.worker(&id).unwrap();
        assert_ne!(c, phantom, "a phantom never equals a real commitment");
        assert!(!masked.contains("80010112"), "{masked}");
        v.flush().unwrap();
        // Read back (from sled, then from the cache): the same commitment.
        for _ in 0..3 {
            assert_eq!(v.find_worker(&id).unwrap(), Some(c));
            assert_eq!(v.worker(&id).unwrap().0, c);
        }
        let (k, _) = v.card(&card).unwrap();
        v.flush().unwrap();
        assert_eq!(v.card_or_phantom(&card).unwrap(), k);
        assert_ne!(k, c);
        // Forgotten: the old commitment can no longer be found, cache or not.
        assert!(v.forget_worker(&id).unwrap());
        assert_eq!(v.find_worker(&id).unwrap(), None);
        let (again, _) = v.worker(&id).unwrap();
        assert_ne!(again, c, "a new salt, so a commitment unlinkable to the old one");
        drop(v);
        // Reopened: salts persist, the cache starts empty.
        let v = Vault::open(dir.path()).unwrap();
        assert_eq!(v.find_worker(&id).unwrap(), Some(again));
        assert_eq!(v.card_or_phantom(&card).unwrap(), k);
    }
}

//! Signed checkpoints, format 2: C2SP tlog-checkpoints (c2sp.org/tlog-checkpoint), that is
//! signed notes whose text is the origin line naming the ledger, the tree size, the
//! base64 RFC 6962 SHA-256 root, and two extension lines: the BLAKE3 chain head (the hash
//! of record `tree_size`) and the signing time. The ledger signs with Ed25519 under the
//! key name = origin and the standard key ID; the public key is shown as a standard
//! verifier key (vkey). Witnesses add cosignature lines (`cosignature.rs`), which a
//! verifier of the log's signature ignores, as the note specification requires.
//!
//! docs/FORMAT.md section 8 has every byte; `tests/vectors/tree-v2.json` a signed example.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use super::note::{self, Note, NoteSignature, SIG_ED25519};
use super::record::Hash;

/// The checkpoint format of this build (format 1: `checkpoint_v1`, read only).
pub const CHECKPOINT_VERSION: u16 = 2;
/// An origin is this prefix and the ledger id (`%` and `+` escaped as `%25` and `%2B`,
/// since a key name may not hold a plus).
pub const ORIGIN_PREFIX: &str = "anxin/";

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("the checkpoint's signature does not verify with the pinned key")]
    BadSignature,
    #[error("the checkpoint carries no signature of the pinned key (key name {name}, key ID {id:08x})")]
    NotSigned { name: String, id: u32 },
    #[error("the checkpoint belongs to ledger {found:?}, not {expected:?}")]
    WrongLedger { expected: String, found: String },
    #[error("not a checkpoint: {0}")]
    Malformed(String),
}

impl From<note::NoteError> for CheckpointError {
    fn from(e: note::NoteError) -> Self {
        CheckpointError::Malformed(e.to_string())
    }
}

/// The origin line of a ledger's checkpoints.
pub fn origin_of(ledger_id: &str) -> String {
    format!("{ORIGIN_PREFIX}{}", ledger_id.replace('%', "%25").replace('+', "%2B"))
}

/// The ledger id an origin names, if it is one of ours.
pub fn ledger_of(origin: &str) -> Option<String> {
    let escaped = origin.strip_prefix(ORIGIN_PREFIX)?;
    let id = escaped.replace("%2B", "+").replace("%25", "%");
    (origin_of(&id) == origin).then_some(id)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub ledger_id: String,
    pub tree_size: u64,
    /// RFC 6962 SHA-256 root of the first `tree_size` records.
    pub root: Hash,
    /// Hash of record `tree_size` (the genesis hash for an empty tree).
    pub chain_head: Hash,
    pub timestamp_ms: i64,
}

/// A decimal with no leading zero (but `0`), as the checkpoint lines require.
fn decimal(s: &str, what: &str) -> Result<u64, CheckpointError> {
    note::decimal(s).ok_or_else(|| CheckpointError::Malformed(format!("the {what} {:?} is not a decimal without leading zeros", s.chars().take(24).collect::<String>())))
}

impl Checkpoint {
    pub fn origin(&self) -> String {
        origin_of(&self.ledger_id)
    }

    /// The note text: exactly what the log's signature and every cosignature cover.
    pub fn body(&self) -> String {
        format!("{}\n{}\n{}\nchain-head {}\ntimestamp-ms {}\n", self.origin(), self.tree_size, B64.encode(self.root), hex::encode(self.chain_head), self.timestamp_ms)
    }

    /// Parses a note text, strictly: the three standard lines and exactly our two
    /// extension lines, each in its one canonical spelling (so that the text a verifier
    /// reads is the only text that gives these values).
    ///
    /// # Errors
    /// `Malformed` saying which line.
    pub fn parse_body(text: &str) -> Result<Checkpoint, CheckpointError> {
        let bad = |why: String| CheckpointError::Malformed(why);
        let lines: Vec<&str> = text.strip_suffix('\n').ok_or_else(|| bad("the text does not end with a newline".into()))?.split('\n').collect();
        let [origin, size, root, head, time] = lines[..] else {
            return Err(bad(format!("{} lines, not the 5 of an Anxin checkpoint (origin, size, root, chain-head, timestamp-ms)", lines.len())));
        };
        let ledger_id = ledger_of(origin).ok_or_else(|| bad(format!("the origin {:?} is not {ORIGIN_PREFIX}<ledger id>", origin.chars().take(80).collect::<String>())))?;
        let tree_size = decimal(size, "tree size")?;
        let root_bytes = B64.decode(root).map_err(|_| bad("the root hash is not base64".into()))?;
        let root_text = root;
        let root: Hash = root_bytes.try_into().map_err(|_| bad("the root hash is not 32 bytes".into()))?;
        if B64.encode(root) != root_text {
            return Err(bad("the root hash is not in canonical base64".into()));
        }
        let head = head.strip_prefix("chain-head ").ok_or_else(|| bad("the fourth line is not chain-head <hex>".into()))?;
        let mut chain_head = [0u8; 32];
        if head.len() != 64 || head.bytes().any(|b| b.is_ascii_uppercase()) || hex::decode_to_slice(head, &mut chain_head).is_err() {
            return Err(bad("the chain head is not 64 lowercase hex digits".into()));
        }
        let time = time.strip_prefix("timestamp-ms ").ok_or_else(|| bad("the fifth line is not timestamp-ms <milliseconds>".into()))?;
        let timestamp_ms = i64::try_from(decimal(time, "timestamp")?).map_err(|_| bad("the timestamp is out of range".into()))?;
        Ok(Checkpoint { ledger_id, tree_size, root, chain_head, timestamp_ms })
    }

    pub fn sign(self, key: &SigningKey) -> SignedCheckpoint {
        let body = self.body();
        let sig = key.sign(body.as_bytes()).to_bytes().to_vec();
        let line = NoteSignature { name: self.origin(), key_id: log_key_id(&self.ledger_id, &key.verifying_key()), sig };
        SignedCheckpoint { checkpoint: self, signatures: vec![line] }
    }
}

/// The key ID of a ledger's checkpoint signatures.
pub fn log_key_id(ledger_id: &str, key: &VerifyingKey) -> u32 {
    note::key_id(&origin_of(ledger_id), SIG_ED25519, key.as_bytes())
}

/// A checkpoint and its note's signature lines: the log's, and any others (witnesses'
/// cosignatures), kept in order so that the note is written back as it was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    pub signatures: Vec<NoteSignature>,
}

impl SignedCheckpoint {
    /// The signed note.
    pub fn to_note(&self) -> String {
        Note { text: self.checkpoint.body(), signatures: self.signatures.clone() }.encode()
    }

    /// Parses a signed note as a checkpoint (signatures are not checked: `verify`).
    ///
    /// # Errors
    /// `Malformed`.
    pub fn from_note(bytes: &[u8]) -> Result<SignedCheckpoint, CheckpointError> {
        let n = Note::parse(bytes)?;
        let checkpoint = Checkpoint::parse_body(&n.text)?;
        Ok(SignedCheckpoint { checkpoint, signatures: n.signatures })
    }

    /// The log's signature lines: those with the origin as key name and `key`'s key ID.
    fn log_lines<'a>(&'a self, key: &VerifyingKey) -> impl Iterator<Item = &'a NoteSignature> + 'a {
        let (name, id) = (self.checkpoint.origin(), log_key_id(&self.checkpoint.ledger_id, key));
        self.signatures.iter().filter(move |s| s.name == name && s.key_id == id)
    }

    /// The log's 64-byte Ed25519 signature by `key`, if the note carries one.
    pub fn log_signature(&self, key: &VerifyingKey) -> Option<[u8; 64]> {
        self.log_lines(key).next().and_then(|s| s.sig.as_slice().try_into().ok())
    }

    /// Checks the log's signature against a pinned key, strictly (RFC 8032 with
    /// small-order keys and `R` and a non-canonical `S` refused, as libsodium does). Lines
    /// of other keys are ignored; a line of this key that fails refuses the whole note.
    ///
    /// # Errors
    /// `NotSigned` if no line is this key's; `BadSignature` if one fails.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), CheckpointError> {
        let body = self.checkpoint.body();
        let mut any = false;
        for line in self.log_lines(key) {
            let sig = Signature::from_slice(&line.sig).map_err(|_| CheckpointError::BadSignature)?;
            key.verify_strict(body.as_bytes(), &sig).map_err(|_| CheckpointError::BadSignature)?;
            any = true;
        }
        if any {
            Ok(())
        } else {
            Err(CheckpointError::NotSigned { name: self.checkpoint.origin(), id: log_key_id(&self.checkpoint.ledger_id, key) })
        }
    }
}

/// A public key as an auditor pins it (name-free): `ed25519:` and 64 hex digits.
pub fn key_to_text(k: &VerifyingKey) -> String {
    format!("ed25519:{}", hex::encode(k.as_bytes()))
}

/// The ledger's key as a standard verifier key: `anxin/<ledger id>+<key ID>+<base64>`.
pub fn vkey(ledger_id: &str, k: &VerifyingKey) -> String {
    note::vkey(&origin_of(ledger_id), SIG_ED25519, k.as_bytes())
}

/// A pinned key in either form: `ed25519:<64 hex>` or a verifier key of type Ed25519
/// (whose key ID is checked; its name must then be the origin of the checkpoints it
/// verifies, or no signature line matches it).
///
/// # Errors
/// A message if it is neither, or not a valid point.
pub fn key_from_text(s: &str) -> Result<VerifyingKey, String> {
    let s = s.trim();
    let bytes: [u8; 32] = if s.contains('+') {
        let (_, t, public) = note::parse_vkey(s).map_err(|e| e.to_string())?;
        if t != SIG_ED25519 {
            return Err(format!("the verifier key is of signature type {t:#04x}, not Ed25519 (0x01)"));
        }
        public.try_into().map_err(|_| "an Ed25519 verifier key holds 32 bytes".to_owned())?
    } else {
        let h = s.strip_prefix("ed25519:").unwrap_or(s);
        let mut b = [0u8; 32];
        hex::decode_to_slice(h, &mut b).map_err(|_| format!("{:?} is not ed25519:<64 hex digits> nor a verifier key", s.chars().take(80).collect::<String>()))?;
        b
    };
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("not an Ed25519 public key: {e}"))
}

/// The name a verifier key text binds to, if it is one (`None` for `ed25519:<hex>`).
pub fn vkey_name(s: &str) -> Option<String> {
    note::parse_vkey(s.trim()).ok().map(|(name, _, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cp() -> Checkpoint {
        Checkpoint { ledger_id: "county+620121%".into(), tree_size: 7, root: [3; 32], chain_head: [4; 32], timestamp_ms: 1_700_000_000_000 }
    }

    #[test]
    fn a_checkpoint_round_trips_as_a_note_and_verifies_with_either_key_form() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let signed = cp().sign(&key);
        let text = signed.to_note();
        assert!(text.starts_with("anxin/county%2B620121%25\n7\n"), "{text}");
        let back = SignedCheckpoint::from_note(text.as_bytes()).unwrap();
        assert_eq!(back, signed);
        back.verify(&key.verifying_key()).unwrap();
        let vk = vkey("county+620121%", &key.verifying_key());
        assert_eq!(key_from_text(&vk).unwrap(), key.verifying_key());
        assert_eq!(key_from_text(&key_to_text(&key.verifying_key())).unwrap(), key.verifying_key());
        assert_eq!(vkey_name(&vk).as_deref(), Some("anxin/county%2B620121%25"));
    }

    #[test]
    fn forged_or_foreign_signatures_are_refused_and_unknown_ones_ignored() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let other = SigningKey::from_bytes(&[2; 32]);
        let mut signed = cp().sign(&key);
        // Another key's line (a witness, a rotated key): ignored.
        signed.signatures.push(NoteSignature { name: "witness.example/w1".into(), key_id: 7, sig: vec![0; 72] });
        signed.verify(&key.verifying_key()).unwrap();
        // Signed by another key only: not signed by the pinned one.
        assert!(matches!(cp().sign(&other).verify(&key.verifying_key()), Err(CheckpointError::NotSigned { .. })));
        // A changed field: the signature fails.
        let mut changed = signed.clone();
        changed.checkpoint.tree_size = 8;
        assert_eq!(changed.verify(&key.verifying_key()), Err(CheckpointError::BadSignature));
        // A second line of the pinned key that fails refuses the note.
        let mut two = signed.clone();
        let mut bad = two.signatures[0].clone();
        bad.sig[0] ^= 1;
        two.signatures.push(bad);
        assert_eq!(two.verify(&key.verifying_key()), Err(CheckpointError::BadSignature));
    }

    #[test]
    fn only_the_canonical_text_parses() {
        let body = cp().body();
        assert_eq!(Checkpoint::parse_body(&body).unwrap(), cp());
        for bad in [
            body.replace("\n7\n", "\n07\n"),
            body.replace("chain-head 04", "chain-head 4"),
            body.replace("chain-head 0404", "chain-head 0A04"),
            body.replace("timestamp-ms ", "timestamp-ms -"),
            body.replace("anxin/", "other/"),
            body.clone() + "extra\n",
            body.trim_end().to_owned(),
        ] {
            assert!(Checkpoint::parse_body(&bad).is_err(), "{bad}");
        }
    }
}

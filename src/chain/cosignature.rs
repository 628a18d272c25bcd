//! Witness cosignatures (c2sp.org/tlog-cosignature, version 1, Ed25519): a witness's note
//! signature on a checkpoint, stating that as of its timestamp the checkpoint is the
//! largest consistent tree head it has seen for that origin.
//!
//! The key ID is SHA-256(name || 0x0A || 0x04 || public key)[:4]; the signature line's
//! bytes are the key ID, the timestamp (u64, big-endian, POSIX seconds) and the Ed25519
//! signature of `cosignature/v1\ntime <timestamp>\n` followed by the checkpoint's text.

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use super::note::{self, NoteSignature, SIG_COSIGNATURE};

/// The exact bytes a cosignature signs.
pub fn signed_message(checkpoint_text: &str, timestamp: u64) -> Vec<u8> {
    format!("cosignature/v1\ntime {timestamp}\n{checkpoint_text}").into_bytes()
}

/// A witness's own key, to cosign with.
pub struct Cosigner {
    pub name: String,
    key: SigningKey,
}

impl Cosigner {
    /// # Errors
    /// A message if the name cannot be a key name.
    pub fn new(name: &str, key: SigningKey) -> Result<Cosigner, String> {
        if !note::is_key_name_valid(name) {
            return Err(format!("{name:?} cannot be a key name (empty, or a space or a plus)"));
        }
        Ok(Cosigner { name: name.to_owned(), key })
    }

    pub fn public(&self) -> WitnessKey {
        WitnessKey { name: self.name.clone(), key: self.key.verifying_key() }
    }

    /// The cosignature line of `checkpoint_text` at `timestamp` (seconds).
    pub fn cosign(&self, checkpoint_text: &str, timestamp: u64) -> NoteSignature {
        let sig = self.key.sign(&signed_message(checkpoint_text, timestamp));
        let mut bytes = timestamp.to_be_bytes().to_vec();
        bytes.extend_from_slice(&sig.to_bytes());
        NoteSignature { name: self.name.clone(), key_id: self.public().key_id(), sig: bytes }
    }
}

/// A witness as a verifier knows it: its name and public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessKey {
    pub name: String,
    pub key: VerifyingKey,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CosignatureError {
    #[error("the cosignature of {0} is not a timestamp and a 64-byte signature")]
    Malformed(String),
    #[error("the cosignature of {0} does not verify")]
    BadSignature(String),
    #[error("the cosignature of {0} has a timestamp past 2^63 - 1")]
    Timestamp(String),
}

impl WitnessKey {
    /// Parses a verifier key of signature type 0x04.
    ///
    /// # Errors
    /// A message if it is not one.
    pub fn from_vkey(text: &str) -> Result<WitnessKey, String> {
        let (name, t, public) = note::parse_vkey(text).map_err(|e| e.to_string())?;
        if t != SIG_COSIGNATURE {
            return Err(format!("the verifier key of {name} is of signature type {t:#04x}, not a cosignature key (0x04)"));
        }
        let bytes: [u8; 32] = public.try_into().map_err(|_| format!("the key of {name} is not 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|e| format!("the key of {name}: {e}"))?;
        Ok(WitnessKey { name, key })
    }

    pub fn vkey(&self) -> String {
        note::vkey(&self.name, SIG_COSIGNATURE, self.key.as_bytes())
    }

    pub fn key_id(&self) -> u32 {
        note::key_id(&self.name, SIG_COSIGNATURE, self.key.as_bytes())
    }

    /// Whether `line` claims to be this witness's (name and key ID).
    pub fn owns(&self, line: &NoteSignature) -> bool {
        line.name == self.name && line.key_id == self.key_id()
    }

    /// Verifies this witness's cosignature line over `checkpoint_text`; returns its
    /// timestamp.
    ///
    /// # Errors
    /// `CosignatureError` saying why not.
    pub fn verify(&self, checkpoint_text: &str, line: &NoteSignature) -> Result<u64, CosignatureError> {
        let name = || self.name.clone();
        if line.sig.len() != 72 {
            return Err(CosignatureError::Malformed(name()));
        }
        let timestamp = u64::from_be_bytes(line.sig[..8].try_into().expect("8 bytes"));
        if timestamp > i64::MAX as u64 {
            return Err(CosignatureError::Timestamp(name()));
        }
        let sig = Signature::from_slice(&line.sig[8..]).map_err(|_| CosignatureError::Malformed(name()))?;
        self.key.verify_strict(&signed_message(checkpoint_text, timestamp), &sig).map_err(|_| CosignatureError::BadSignature(name()))?;
        Ok(timestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cosignature_verifies_only_over_its_checkpoint_and_with_its_key() {
        let w = Cosigner::new("witness.example/w1", SigningKey::from_bytes(&[3; 32])).unwrap();
        let text = "anxin/x\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        let line = w.cosign(text, 1_700_000_000);
        let k = WitnessKey::from_vkey(&w.public().vkey()).unwrap();
        assert!(k.owns(&line));
        assert_eq!(k.verify(text, &line), Ok(1_700_000_000));
        assert!(k.verify(&text.replace('5', "6"), &line).is_err(), "another checkpoint");
        let mut later = line.clone();
        later.sig[7] ^= 1;
        assert!(k.verify(text, &later).is_err(), "another time");
        // A log key (type 0x01) is not a witness key.
        let log = note::vkey("witness.example/w1", note::SIG_ED25519, k.key.as_bytes());
        assert!(WitnessKey::from_vkey(&log).is_err());
    }
}

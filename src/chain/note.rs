//! C2SP signed notes (c2sp.org/signed-note): a text ending in a newline, a blank line, then
//! one or more signature lines `— <key name> base64(key ID || signature)`. Checkpoints
//! (`checkpoint.rs`) and witness cosignatures (`cosignature.rs`) are notes; this module
//! parses and writes them strictly, and computes key IDs and verifier keys (vkeys).
//!
//! Parsing follows the specification to the letter: valid UTF-8, no control character but
//! the newline, the text separated from the signatures by the *last* blank line, key
//! names non-empty without spaces or `+`, signatures standard base64 of at least 4 bytes.
//! What a signature means is the caller's: a verifier matches lines by name and key ID
//! and ignores the others, as the specification requires.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Signature type of a note signed with Ed25519 (a log's checkpoint signature).
pub const SIG_ED25519: u8 = 0x01;
/// Signature type of a timestamped Ed25519 cosignature (c2sp.org/tlog-cosignature).
pub const SIG_COSIGNATURE: u8 = 0x04;
/// The largest note read (text and signatures): far above a checkpoint with 64
/// cosignatures, far below what could exhaust memory.
pub const MAX_NOTE_BYTES: usize = 64 * 1024;
/// The most signature lines read: the specification asks verifiers to accept at least 16.
pub const MAX_SIGNATURES: usize = 64;

const DASH: &str = "\u{2014} ";

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("a signed note: {0}")]
    Malformed(String),
    #[error("a verifier key: {0}")]
    BadVkey(String),
}

fn malformed<T>(why: impl Into<String>) -> Result<T, NoteError> {
    Err(NoteError::Malformed(why.into()))
}

/// A decimal without leading zeros (but `0` itself) that fits a `u64`: the one spelling
/// the C2SP formats allow for sizes and indexes.
pub fn decimal(s: &str) -> Option<u64> {
    let canonical = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s.len() == 1 || !s.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
}

/// A 32-byte hash in standard base64.
pub fn hash_b64(s: &str) -> Option<[u8; 32]> {
    B64.decode(s).ok().and_then(|b| b.try_into().ok())
}

/// Base64 hash lines up to the first blank line (at most `max`), as the tlog-witness
/// request and the tlog-proof put their proofs; returns them and the text after the
/// blank line.
///
/// # Errors
/// A message if a line is not a hash, there are more than `max`, or no blank line.
pub fn hash_lines(mut rest: &str, max: usize) -> Result<(Vec<[u8; 32]>, &str), String> {
    let mut out = Vec::new();
    loop {
        let (line, after) = rest.split_once('\n').ok_or("no blank line after the proof")?;
        rest = after;
        if line.is_empty() {
            return Ok((out, rest));
        }
        if out.len() == max {
            return Err(format!("more than {max} proof lines"));
        }
        out.push(hash_b64(line).ok_or("a proof line is not a base64 32-byte hash")?);
    }
}

/// SHA-256(name || 0x0A || type || public key)[:4], big-endian: the key ID the
/// specification recommends (and the cosignature specification requires).
pub fn key_id(name: &str, sig_type: u8, public: &[u8]) -> u32 {
    let d: [u8; 32] = Sha256::new().chain_update(name.as_bytes()).chain_update([b'\n', sig_type]).chain_update(public).finalize().into();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// A key name: non-empty, no Unicode space, no `+`.
pub fn is_key_name_valid(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+') && !name.chars().any(char::is_control)
}

/// The verifier key text: `<name>+<hex key ID>+<base64(type || public key)>`.
pub fn vkey(name: &str, sig_type: u8, public: &[u8]) -> String {
    let mut material = vec![sig_type];
    material.extend_from_slice(public);
    format!("{name}+{:08x}+{}", key_id(name, sig_type, public), B64.encode(material))
}

/// Parses a verifier key, checking that its key ID is the one its name, type and key give.
/// Returns (name, type, public key).
///
/// # Errors
/// `BadVkey` saying what is wrong.
pub fn parse_vkey(text: &str) -> Result<(String, u8, Vec<u8>), NoteError> {
    let bad = |why: &str| Err(NoteError::BadVkey(format!("{why} in {:?}", text.chars().take(120).collect::<String>())));
    // Neither a name nor a key ID holds a plus; base64 may.
    let mut parts = text.trim().splitn(3, '+');
    let (Some(name), Some(id), Some(material)) = (parts.next(), parts.next(), parts.next()) else {
        return bad("not <name>+<key id>+<key>");
    };
    if !is_key_name_valid(name) {
        return bad("the name is empty or has a space");
    }
    if id.len() != 8 || !id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
        return bad("the key ID is not 8 lowercase hex digits");
    }
    let Ok(material) = B64.decode(material) else { return bad("the key is not base64") };
    let Some((&sig_type, public)) = material.split_first() else { return bad("the key is empty") };
    if format!("{:08x}", key_id(name, sig_type, public)) != id {
        return bad("the key ID is not the one of this name and key");
    }
    Ok((name.to_owned(), sig_type, public.to_vec()))
}

/// One signature line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_id: u32,
    /// The signature proper (after the 4-byte key ID).
    pub sig: Vec<u8>,
}

impl NoteSignature {
    /// The line, newline included.
    pub fn line(&self) -> String {
        let mut b = self.key_id.to_be_bytes().to_vec();
        b.extend_from_slice(&self.sig);
        format!("{DASH}{} {}\n", self.name, B64.encode(b))
    }

    /// Parses one line (without its newline).
    ///
    /// # Errors
    /// `Malformed`.
    pub fn parse_line(line: &str) -> Result<NoteSignature, NoteError> {
        let Some(rest) = line.strip_prefix(DASH) else { return malformed("a signature line does not start with an em dash and a space") };
        let Some((name, b64)) = rest.split_once(' ') else { return malformed("a signature line has no signature after the key name") };
        if !is_key_name_valid(name) {
            return malformed("a signature line's key name is empty or has a space or a plus");
        }
        let Ok(bytes) = B64.decode(b64) else { return malformed(format!("the signature of {name} is not standard base64")) };
        if bytes.len() < 5 {
            return malformed(format!("the signature of {name} is shorter than a key ID and a signature"));
        }
        Ok(NoteSignature { name: name.to_owned(), key_id: u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]), sig: bytes[4..].to_vec() })
    }
}

/// A signed note: its text (final newline included) and its signature lines, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub text: String,
    pub signatures: Vec<NoteSignature>,
}

impl Note {
    /// Parses a note, strictly.
    ///
    /// # Errors
    /// `Malformed` saying what is wrong.
    pub fn parse(bytes: &[u8]) -> Result<Note, NoteError> {
        if bytes.len() > MAX_NOTE_BYTES {
            return malformed(format!("{} bytes is more than the {MAX_NOTE_BYTES} read", bytes.len()));
        }
        let Ok(s) = std::str::from_utf8(bytes) else { return malformed("not UTF-8") };
        if s.chars().any(|c| c.is_ascii_control() && c != '\n') {
            return malformed("a control character other than the newline");
        }
        if !s.ends_with('\n') {
            return malformed("it does not end with a newline");
        }
        let Some(cut) = s.rfind("\n\n") else { return malformed("no blank line between the text and the signatures") };
        let (text, sigs) = (&s[..=cut], &s[cut + 2..]);
        let lines: Vec<&str> = sigs.strip_suffix('\n').unwrap_or(sigs).split('\n').collect();
        if sigs.is_empty() || lines.is_empty() {
            return malformed("no signature");
        }
        if lines.len() > MAX_SIGNATURES {
            return malformed(format!("{} signatures is more than the {MAX_SIGNATURES} read", lines.len()));
        }
        let signatures = lines.into_iter().map(NoteSignature::parse_line).collect::<Result<Vec<_>, _>>()?;
        Ok(Note { text: text.to_owned(), signatures })
    }

    /// The note as bytes: text, blank line, signature lines.
    pub fn encode(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&s.line());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's own example: its vkey and its signed note.
    #[test]
    fn the_specifications_example_parses_and_verifies() {
        let (name, t, public) = parse_vkey("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k").unwrap();
        assert_eq!((name.as_str(), t), ("example.com/foo", SIG_ED25519));
        let note = Note::parse("This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n".as_bytes()).unwrap();
        assert_eq!(note.text, "This is an example message.\n");
        let s = &note.signatures[0];
        assert_eq!((s.name.as_str(), s.key_id), ("example.com/foo", 0x530d903a));
        let key = ed25519_dalek::VerifyingKey::from_bytes(&public.try_into().unwrap()).unwrap();
        let sig = ed25519_dalek::Signature::from_slice(&s.sig).unwrap();
        key.verify_strict(note.text.as_bytes(), &sig).unwrap();
        assert_eq!(note.encode(), "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n");
    }

    #[test]
    fn malformed_notes_and_vkeys_are_refused() {
        let good = "t\n\n\u{2014} a/b AAAAAAE=\n";
        assert!(Note::parse(good.as_bytes()).is_ok());
        for bad in ["t\n\u{2014} a/b AAAAAAE=\n", "t\n\n\u{2014} a/b AAAAAAE=", "t\n\n- a/b AAAAAAE=\n", "t\n\n\u{2014} a+b AAAAAAE=\n", "t\n\n\u{2014} a/b AAAA\n", "t\n\n\u{2014} a/b !!!!\n", "t\r\n\n\u{2014} a/b AAAAAAE=\n", "t\n\n"] {
            assert!(Note::parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(Note::parse(&[b't', b'\n', b'\n', 0xff, b'\n']).is_err());
        // The text may hold blank lines: the last one separates.
        let n = Note::parse("a\n\nb\n\n\u{2014} a/b AAAAAAE=\n".as_bytes()).unwrap();
        assert_eq!(n.text, "a\n\nb\n");
        // A vkey whose ID is not its own.
        assert!(parse_vkey("example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k").is_err());
        assert!(parse_vkey("example.com/foo+530d903a").is_err());
    }

    #[test]
    fn decimals_and_proof_lines_have_one_spelling() {
        assert_eq!((decimal("0"), decimal("10"), decimal("18446744073709551615")), (Some(0), Some(10), Some(u64::MAX)));
        for bad in ["", "01", "+1", "-1", " 1", "1 ", "18446744073709551616", "1e3"] {
            assert_eq!(decimal(bad), None, "{bad:?}");
        }
        let h = B64.encode([7u8; 32]);
        assert_eq!(hash_lines(&format!("{h}\n{h}\n\nrest"), 2), Ok((vec![[7; 32], [7; 32]], "rest")));
        assert!(hash_lines(&format!("{h}\n{h}\n\n"), 1).is_err(), "more than the bound");
        assert!(hash_lines(&format!("{h}\n"), 2).is_err(), "no blank line");
        assert!(hash_lines("AAAA\n\n", 2).is_err(), "not 32 bytes");
    }

    /// Base64 holds `+` and `/`: a key whose encoding has them parses (a split on every
    /// plus once refused them).
    #[test]
    fn keys_whose_base64_holds_a_plus_parse() {
        let mut with_plus = 0;
        for seed in 0..64u8 {
            let public = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]).verifying_key();
            let text = vkey("anxin/x", SIG_ED25519, public.as_bytes());
            with_plus += usize::from(text.matches('+').count() > 2);
            assert_eq!(parse_vkey(&text).unwrap().2, public.as_bytes().to_vec(), "{text}");
        }
        assert!(with_plus > 0, "some of the keys tried have a plus in their base64");
    }
}

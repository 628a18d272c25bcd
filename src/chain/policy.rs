//! Witness policies in the C2SP tlog-policy format (c2sp.org/tlog-policy): which logs are
//! known, which witnesses (with, for a log that submits to them, their submission URL),
//! and the quorum, a witness or a group of k of n members, groups nesting:
//!
//! ```text
//! log anxin/county-620121+70e2c0bc+AYqI...
//! witness county   county.example/w1+1a2b3c4d+BK...  http://10.0.0.5:7380
//! witness bank     icbc.example/w1+5e6f7a8b+BM...
//! witness court    court.example/w1+9c0d1e2f+BP...
//! group two-of-three 2 county bank court
//! quorum two-of-three
//! ```
//!
//! `anxind` submits each new checkpoint to the witnesses that have a URL and keeps their
//! cosignatures; `anxin audit --policy` and `anxin check-receipt --policy` accept a
//! checkpoint only if its cosignatures meet the quorum.

use std::collections::HashMap;

use super::checkpoint::SignedCheckpoint;
use super::cosignature::WitnessKey;

#[derive(Clone, Debug)]
pub struct Witness {
    pub name: String,
    pub key: WitnessKey,
    /// The tlog-witness submission prefix, if the log submits to it.
    pub url: Option<String>,
}

#[derive(Clone, Debug)]
enum Rule {
    None,
    Witness(usize),
    Group { k: usize, members: Vec<Rule> },
}

/// A parsed policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The logs' verifier keys, as written.
    pub logs: Vec<String>,
    /// The same, parsed: each log's name (a verifier key names its log) and key.
    log_keys: Vec<(Option<String>, ed25519_dalek::VerifyingKey)>,
    pub witnesses: Vec<Witness>,
    quorum: Rule,
    quorum_text: String,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the witness policy, line {line}: {why}")]
pub struct PolicyError {
    pub line: usize,
    pub why: String,
}

impl Policy {
    /// Parses a policy file.
    ///
    /// # Errors
    /// `PolicyError` naming the line.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let mut logs = Vec::new();
        let mut log_keys = Vec::new();
        let mut witnesses: Vec<Witness> = Vec::new();
        let mut names: HashMap<String, Rule> = HashMap::new();
        let mut quorum = None;
        for (i, raw) in text.split('\n').enumerate() {
            let line = i + 1;
            let bad = |why: String| PolicyError { line, why };
            if raw.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
                return Err(bad("a control character other than a tab".into()));
            }
            let words: Vec<&str> = raw.split([' ', '\t']).filter(|w| !w.is_empty()).collect();
            let Some((&keyword, args)) = words.split_first() else { continue };
            if keyword.starts_with('#') {
                continue;
            }
            let fresh = |name: &str, names: &HashMap<String, Rule>| {
                if name == "none" || names.contains_key(name) {
                    Err(bad(format!("the name {name:?} is defined already")))
                } else {
                    Ok(())
                }
            };
            match (keyword, args) {
                ("log", [vkey] | [vkey, _]) => {
                    let key = crate::chain::checkpoint::key_from_text(vkey).map_err(bad)?;
                    let name = crate::chain::checkpoint::vkey_name(vkey);
                    if log_keys.contains(&(name.clone(), key)) {
                        return Err(bad("the same log twice".into()));
                    }
                    logs.push((*vkey).to_owned());
                    log_keys.push((name, key));
                }
                ("witness", [name, vkey, rest @ ..]) if rest.len() <= 1 => {
                    fresh(name, &names)?;
                    // anxind submits over plain HTTP (a witness elsewhere sits behind a
                    // TLS-terminating proxy on the same host): said now, not at every submission.
                    if let Some(u) = rest.first().filter(|u| !u.starts_with("http://")) {
                        return Err(bad(format!("the URL {u:?} is not http://: this build submits to witnesses over plain HTTP")));
                    }
                    let key = WitnessKey::from_vkey(vkey).map_err(bad)?;
                    if witnesses.iter().any(|w| w.key.key == key.key) {
                        return Err(bad("the same witness key twice".into()));
                    }
                    names.insert((*name).to_owned(), Rule::Witness(witnesses.len()));
                    witnesses.push(Witness { name: (*name).to_owned(), key, url: rest.first().map(|u| u.trim_end_matches('/').to_owned()) });
                }
                ("group", [name, k, members @ ..]) if !members.is_empty() => {
                    fresh(name, &names)?;
                    let mut seen = Vec::new();
                    let mut rules = Vec::new();
                    for m in members {
                        if seen.contains(m) {
                            return Err(bad(format!("{m} is a member twice")));
                        }
                        seen.push(*m);
                        rules.push(names.get(*m).cloned().ok_or_else(|| bad(format!("{m} is not defined on a line before")))?);
                    }
                    let n = members.len();
                    let k = match *k {
                        "all" => n,
                        "any" => 1,
                        k => crate::chain::note::decimal(k).and_then(|k| usize::try_from(k).ok()).filter(|k| (1..=n).contains(k)).ok_or_else(|| bad(format!("the threshold {k:?} is not all, any or 1 to {n}")))?,
                    };
                    names.insert((*name).to_owned(), Rule::Group { k, members: rules });
                }
                ("quorum", [name]) => {
                    if quorum.is_some() {
                        return Err(bad("a second quorum line".into()));
                    }
                    let rule = if *name == "none" { Rule::None } else { names.get(*name).cloned().ok_or_else(|| bad(format!("{name} is not defined on a line before")))? };
                    quorum = Some((rule, (*name).to_owned()));
                }
                _ => return Err(bad(format!("not a log, witness, group or quorum line: {:?}", raw.chars().take(80).collect::<String>()))),
            }
        }
        let (quorum, quorum_text) = quorum.ok_or(PolicyError { line: 0, why: "no quorum line".into() })?;
        Ok(Policy { logs, log_keys, witnesses, quorum, quorum_text })
    }

    /// The witnesses whose cosignatures on `cp` verify (each counted once).
    pub fn cosigned_by(&self, cp: &SignedCheckpoint) -> Vec<usize> {
        let text = cp.checkpoint.body();
        (0..self.witnesses.len())
            .filter(|&i| {
                let w = &self.witnesses[i].key;
                cp.signatures.iter().any(|s| w.owns(s) && w.verify(&text, s).is_ok())
            })
            .collect()
    }

    /// Whether the quorum holds for `cp`: `Ok` with the witnesses that cosigned, or why
    /// not. (The log's own signature is checked separately, against the pinned key.)
    ///
    /// # Errors
    /// A message naming the quorum and who cosigned.
    /// Whether the policy is for the log named `origin` with `key` (a policy without `log`
    /// lines is for any log).
    pub fn is_for(&self, origin: &str, key: &ed25519_dalek::VerifyingKey) -> bool {
        self.log_keys.is_empty() || self.log_keys.iter().any(|(name, k)| name.as_ref().is_none_or(|n| n == origin) && k == key)
    }

    /// A policy with `log` lines holds only for a checkpoint of one of those logs: its
    /// origin is the log's name and the log's key signed it.
    pub fn check(&self, cp: &SignedCheckpoint) -> Result<Vec<String>, String> {
        let origin = cp.checkpoint.origin();
        if !self.log_keys.is_empty() && !self.log_keys.iter().any(|(name, key)| name.as_ref().is_none_or(|n| *n == origin) && cp.verify(key).is_ok()) {
            return Err(format!("the witness policy is for the logs {}, not for {origin} as signed: it is another ledger's policy", self.logs.join(", ")));
        }
        let by = self.cosigned_by(cp);
        let names: Vec<String> = by.iter().map(|&i| self.witnesses[i].name.clone()).collect();
        if holds(&self.quorum, &by) {
            Ok(names)
        } else {
            Err(format!(
                "the checkpoint of {} records is not witnessed by the policy's quorum {:?}: valid cosignatures from {}",
                cp.checkpoint.tree_size,
                self.quorum_text,
                if names.is_empty() { "no witness".to_owned() } else { names.join(", ") }
            ))
        }
    }
}

fn holds(rule: &Rule, by: &[usize]) -> bool {
    match rule {
        Rule::None => true,
        Rule::Witness(i) => by.contains(i),
        Rule::Group { k, members } => members.iter().filter(|m| holds(m, by)).count() >= *k,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::checkpoint::Checkpoint;
    use crate::chain::cosignature::Cosigner;
    use ed25519_dalek::SigningKey;

    fn witness(i: u8) -> Cosigner {
        Cosigner::new(&format!("w{i}.example/w"), SigningKey::from_bytes(&[i; 32])).unwrap()
    }

    #[test]
    fn a_two_of_three_quorum_counts_only_valid_cosignatures_of_known_witnesses() {
        let ws: Vec<Cosigner> = (1..=3).map(witness).collect();
        let text = format!(
            "# three witnesses, two needed\nwitness a {}\nwitness b {} http://127.0.0.1:1/\nwitness c {}\ngroup two 2 a b c\nquorum two\n",
            ws[0].public().vkey(),
            ws[1].public().vkey(),
            ws[2].public().vkey()
        );
        let p = Policy::parse(&text).unwrap();
        assert_eq!(p.witnesses[1].url.as_deref(), Some("http://127.0.0.1:1"));
        let mut cp = Checkpoint { ledger_id: "x".into(), tree_size: 3, root: [1; 32], chain_head: [2; 32], timestamp_ms: 0 }.sign(&SigningKey::from_bytes(&[9; 32]));
        let body = cp.checkpoint.body();
        cp.signatures.push(ws[0].cosign(&body, 10));
        assert!(p.check(&cp).is_err(), "one of three");
        // The same witness twice still counts once; an unknown witness not at all.
        cp.signatures.push(ws[0].cosign(&body, 11));
        cp.signatures.push(witness(7).cosign(&body, 10));
        assert!(p.check(&cp).is_err());
        // A cosignature over another checkpoint does not count.
        let other = Checkpoint { tree_size: 4, ..cp.checkpoint.clone() }.body();
        cp.signatures.push(ws[1].cosign(&other, 10));
        assert!(p.check(&cp).is_err());
        cp.signatures.push(ws[2].cosign(&body, 12));
        assert_eq!(p.check(&cp).unwrap(), vec!["a".to_owned(), "c".to_owned()]);
    }

    /// A policy's `log` lines are parsed keys: a checkpoint of another log, or of this
    /// log's name signed by another key, does not meet it, whatever its cosignatures.
    #[test]
    fn a_policy_with_log_lines_holds_only_for_those_logs() {
        let log = SigningKey::from_bytes(&[9; 32]);
        let w = witness(1);
        let cp = |id: &str, key: &SigningKey| {
            let mut c = Checkpoint { ledger_id: id.into(), tree_size: 3, root: [1; 32], chain_head: [2; 32], timestamp_ms: 0 }.sign(key);
            let body = c.checkpoint.body();
            c.signatures.push(w.cosign(&body, 10));
            c
        };
        let vk = crate::chain::checkpoint::vkey("x", &log.verifying_key());
        // Written with extra spaces: compared as keys, not as text.
        let p = Policy::parse(&format!("log   {vk}\nwitness a {}\nquorum a\n", w.public().vkey())).unwrap();
        assert_eq!(p.check(&cp("x", &log)).unwrap(), vec!["a".to_owned()]);
        let e = p.check(&cp("y", &log)).unwrap_err();
        assert!(e.contains("another ledger's policy"), "{e}");
        assert!(p.check(&cp("x", &SigningKey::from_bytes(&[8; 32]))).is_err(), "another key under the log's name");
        assert!(Policy::parse(&format!("log {vk}\nlog {vk}\nquorum none\n")).is_err(), "the same log twice");
    }

    #[test]
    fn malformed_policies_are_refused_naming_the_line() {
        let w = witness(1).public().vkey();
        for (text, line) in [
            (format!("witness a {w}\ngroup g 2 a\nquorum g\n"), 2),
            (format!("witness a {w}\nquorum b\n"), 2),
            (format!("witness a {w}\nwitness a {}\nquorum a\n", witness(2).public().vkey()), 2),
            (format!("witness a {w}\nwitness b {w}\nquorum a\n"), 2),
            (format!("witness a {w}\ngroup g any a a\nquorum g\n"), 2),
            (format!("witness a {w}\ngroup g 01 a\nquorum g\n"), 2),
            (format!("witness a {w}\ngroup g +1 a\nquorum g\n"), 2),
            (format!("witness a {w} https://w.example/\nquorum a\n"), 1),
            (format!("witness a {w}\nquorum a\nquorum a\n"), 3),
            (format!("witness a {w}\n"), 0),
            ("frobnicate\nquorum none\n".to_owned(), 1),
        ] {
            assert_eq!(Policy::parse(&text).err().map(|e| e.line), Some(line), "{text}");
        }
        assert!(Policy::parse("quorum none\n").unwrap().check(&Checkpoint { ledger_id: "x".into(), tree_size: 0, root: [0; 32], chain_head: [0; 32], timestamp_ms: 0 }.sign(&SigningKey::from_bytes(&[9; 32]))).is_ok());
    }
}

//! `anxind --check-config`: everything a start would read from the configuration, read
//! and checked without opening the ledger or listening anywhere, so that an operator (or
//! a service manager's `ExecStartPre`) learns of a mistake before a restart does.

use crate::server::Config;

/// Checks `cfg`; the lines say what was checked.
///
/// # Errors
/// Every problem found, one a line, each naming the file or key.
pub fn check(cfg: &Config) -> Result<Vec<String>, Vec<String>> {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    ok.push(format!("listen {}", cfg.listen));
    match cfg.policies_and_calendars() {
        Ok((_, cals)) => ok.push(format!("policy and calendars: national{}", if cals.counties.is_empty() { String::new() } else { format!(" and {} count(y/ies) of their own", cals.counties.len()) })),
        Err(e) => bad.push(e),
    }
    match &cfg.principals {
        Some(p) => match crate::api::auth::Principals::load(p) {
            Ok(ps) => ok.push(format!("principals {}: {} token(s)", p.display(), ps.len())),
            Err(e) => bad.push(e),
        },
        None => ok.push(format!("principals: {} (created with a development operator token if absent)", cfg.data.join("principals.toml").display())),
    }
    if let Some(t) = &cfg.tls {
        let mut pems = Vec::new();
        for (what, p, marker) in [("certificate", &t.cert, "CERTIFICATE"), ("key", &t.key, "PRIVATE KEY")] {
            match std::fs::read_to_string(p) {
                Ok(pem) if pem.contains("-----BEGIN ") && pem.contains(marker) => {
                    ok.push(format!("TLS {what} {}", p.display()));
                    pems.push(pem.into_bytes());
                }
                Ok(_) => bad.push(format!("{}: the TLS {what} file holds no PEM {marker}", p.display())),
                Err(e) => bad.push(format!("{}: {e}", p.display())),
            }
        }
        // Both read: do they make a TLS server (the key the certificate's)?
        if let Ok([cert_pem, key_pem]) = <[Vec<u8>; 2]>::try_from(pems) {
            if let Err(e) = crate::api::https::server_config(&crate::api::Tls { cert_pem, key_pem }) {
                bad.push(format!("{} and {}: {e}", t.cert.display(), t.key.display()));
            }
        }
    }
    for (what, p) in [("signing key", &cfg.file.signing_key), ("vault key", &cfg.file.vault_key)] {
        if let Some(p) = p {
            match std::fs::metadata(p) {
                Ok(m) if m.len() == 32 => ok.push(format!("{what} {}", p.display())),
                Ok(m) => bad.push(format!("{}: the {what} is {} bytes, not 32", p.display(), m.len())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => ok.push(format!("{what} {} (created at the first start)", p.display())),
                Err(e) => bad.push(format!("{}: {e}", p.display())),
            }
        }
    }
    if let Some(p) = &cfg.file.witness_policy {
        match std::fs::read_to_string(p).map_err(|e| e.to_string()).and_then(|t| crate::chain::policy::Policy::parse(&t).map_err(|e| e.to_string())) {
            Ok(policy) => ok.push(format!("witness policy {}: {} witness(es), {} of them submitted to", p.display(), policy.witnesses.len(), policy.witnesses.iter().filter(|w| w.url.is_some()).count())),
            Err(e) => bad.push(format!("{}: {e}", p.display())),
        }
    }
    if let Some(r) = &cfg.file.replication {
        if r.dsns.is_empty() {
            bad.push("[replication] dsns: at least one PostgreSQL connection string".into());
        }
        if r.node_id.trim().is_empty() {
            bad.push("[replication] node_id is empty".into());
        }
        if !(r.advertise.starts_with("http://") || r.advertise.starts_with("https://")) {
            bad.push(format!("[replication] advertise {:?}: a URL clients reach this node at (http:// or https://)", r.advertise));
        }
        ok.push(format!("replication: node {} of {} database(s), advertised as {}", r.node_id, r.dsns.len(), r.advertise));
    }
    // Every address given once: two servers cannot share one.
    let mut addrs: Vec<(&str, std::net::SocketAddr)> = vec![("listen", cfg.listen)];
    addrs.extend(cfg.dashboard.map(|a| ("dashboard", a)));
    addrs.extend(cfg.file.tiles.map(|a| ("tiles", a)));
    addrs.extend(cfg.file.metrics.map(|a| ("metrics", a)));
    for (i, (a, x)) in addrs.iter().enumerate() {
        if let Some((b, _)) = addrs[..i].iter().find(|(_, y)| y == x && x.port() != 0) {
            bad.push(format!("{a} and {b} are both {x}"));
        }
    }
    match cfg.data.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) if !cfg.data.exists() && !parent.exists() => bad.push(format!("data {}: neither it nor its parent exists", cfg.data.display())),
        _ => ok.push(format!("data {}{}", cfg.data.display(), if cfg.data.exists() { "" } else { " (created at the first start)" })),
    }
    if bad.is_empty() { Ok(ok) } else { Err(bad) }
}

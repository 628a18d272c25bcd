//! A PostgreSQL primary with a synchronous standby on free loopback ports, for the
//! replicated ledger's tests (`replication.rs`): `initdb`, `pg_basebackup -R`,
//! `synchronous_standby_names = 'ANY 1 (s1)'`, `synchronous_commit = on`, as
//! `../shared/probes/pg-replicated/` does it. Debian's `postgresql` package provides the
//! binaries (`tests/run` installs it); as root, the servers run as the `postgres` user.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The binaries: `ANXIN_PG_BIN`, or Debian's newest `/usr/lib/postgresql/*/bin`.
pub fn pg_bin() -> Option<PathBuf> {
    if let Ok(b) = std::env::var("ANXIN_PG_BIN") {
        return Some(PathBuf::from(b));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, p): &(u32, PathBuf)| p.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p)
}

/// Whether the tests may skip for want of PostgreSQL (never under CI).
pub fn available() -> bool {
    if pg_bin().is_some() {
        return true;
    }
    assert!(std::env::var("CI").is_err(), "PostgreSQL is not installed (tests/run installs Debian's postgresql)");
    eprintln!("skipped: PostgreSQL is not installed");
    false
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn is_root() -> bool {
    // SAFETY: geteuid reads the process's effective user id; nothing else.
    unsafe { libc::geteuid() == 0 }
}

/// Runs a PostgreSQL program (as `postgres` when we are root).
fn run(bin: &Path, prog: &str, args: &[&str]) -> std::process::Output {
    let path = bin.join(prog);
    let out = if is_root() {
        Command::new("runuser").args(["-u", "postgres", "--"]).arg(&path).args(args).output()
    } else {
        Command::new(&path).args(args).output()
    }
    .unwrap_or_else(|e| panic!("{prog}: {e}"));
    out
}

fn must(bin: &Path, prog: &str, args: &[&str]) {
    let out = run(bin, prog, args);
    assert!(out.status.success(), "{prog} {args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

/// The pair. Dropping it stops both servers (`immediate`).
pub struct PgPair {
    pub dir: tempfile::TempDir,
    bin: PathBuf,
    pub primary: u16,
    pub standby: u16,
}

pub fn dsn(port: u16) -> String {
    format!("host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=2")
}

impl PgPair {
    /// Starts both and waits until the standby streams synchronously.
    pub fn start() -> PgPair {
        let bin = pg_bin().expect("PostgreSQL binaries");
        let dir = tempfile::Builder::new().prefix("anxin-pg").tempdir().unwrap();
        let (primary, standby) = (free_port(), free_port());
        if is_root() {
            let _ = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status();
        }
        let p = dir.path().join("p");
        let s = dir.path().join("s");
        must(&bin, "initdb", &["-D", p.to_str().unwrap(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"]);
        let conf = format!(
            "listen_addresses='127.0.0.1'\nport={primary}\nunix_socket_directories=''\nshared_buffers=64MB\nmax_wal_size=1GB\nwal_level=replica\nmax_wal_senders=4\nsynchronous_standby_names='ANY 1 (s1)'\nsynchronous_commit=on\nfsync=on\nlog_min_messages=warning\n"
        );
        append(&p.join("postgresql.conf"), &conf);
        append(&p.join("pg_hba.conf"), "host replication all 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 trust\n");
        must(&bin, "pg_ctl", &["-D", p.to_str().unwrap(), "-l", dir.path().join("p.log").to_str().unwrap(), "-w", "start"]);
        must(&bin, "pg_basebackup", &["-h", "127.0.0.1", "-p", &primary.to_string(), "-U", "postgres", "-D", s.to_str().unwrap(), "-R", "-X", "stream"]);
        append(&s.join("postgresql.conf"), &format!("port={standby}\n"));
        append(&s.join("postgresql.auto.conf"), &format!("primary_conninfo='host=127.0.0.1 port={primary} user=postgres application_name=s1'\n"));
        must(&bin, "pg_ctl", &["-D", s.to_str().unwrap(), "-l", dir.path().join("s.log").to_str().unwrap(), "-w", "start"]);
        let pair = PgPair { dir, bin, primary, standby };
        pair.wait_sync();
        pair
    }

    pub fn dsns(&self) -> Vec<String> {
        vec![dsn(self.primary), dsn(self.standby)]
    }

    /// A psql-like query on `port` (tests look into the tables).
    pub fn client(&self, port: u16) -> postgres::Client {
        postgres::Client::connect(&dsn(port), postgres::NoTls).unwrap()
    }

    fn wait_sync(&self) {
        let t0 = Instant::now();
        loop {
            if let Ok(mut c) = postgres::Client::connect(&dsn(self.primary), postgres::NoTls) {
                if let Ok(rows) = c.query("SELECT sync_state FROM pg_stat_replication WHERE application_name = 's1'", &[]) {
                    if rows.iter().any(|r| matches!(r.get::<_, &str>(0), "sync" | "quorum")) {
                        return;
                    }
                }
            }
            assert!(t0.elapsed() < Duration::from_secs(30), "the standby never became synchronous");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn ctl(&self, which: &str, args: &[&str]) -> std::process::Output {
        let d = self.dir.path().join(which);
        let mut all = vec!["-D", d.to_str().unwrap()];
        all.extend_from_slice(args);
        run(&self.bin, "pg_ctl", &all)
    }

    /// Stops the standby at once (commits then wait for it).
    pub fn kill_standby(&self) {
        let _ = self.ctl("s", &["-m", "immediate", "stop"]);
    }

    /// Stops the primary at once (as if its machine died).
    pub fn kill_primary(&self) {
        let _ = self.ctl("p", &["-m", "immediate", "stop"]);
    }

    /// Promotes the standby, then builds a new synchronous standby from it where the
    /// primary was (same port), as an operator (or Patroni) would: commits wait for two
    /// machines again, and the nodes' connection lists still name both.
    pub fn promote_standby_and_rebuild(&self) {
        let out = self.ctl("s", &["-w", "promote"]);
        assert!(out.status.success(), "promote: {}", String::from_utf8_lossy(&out.stderr));
        let p = self.dir.path().join("p");
        std::fs::remove_dir_all(&p).unwrap();
        must(&self.bin, "pg_basebackup", &["-h", "127.0.0.1", "-p", &self.standby.to_string(), "-U", "postgres", "-D", p.to_str().unwrap(), "-R", "-X", "stream"]);
        append(&p.join("postgresql.conf"), &format!("port={}\n", self.primary));
        append(&p.join("postgresql.auto.conf"), &format!("primary_conninfo='host=127.0.0.1 port={} user=postgres application_name=s1'\n", self.standby));
        must(&self.bin, "pg_ctl", &["-D", p.to_str().unwrap(), "-l", self.dir.path().join("p2.log").to_str().unwrap(), "-w", "start"]);
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    f.write_all(text.as_bytes()).unwrap();
}

impl Drop for PgPair {
    fn drop(&mut self) {
        let _ = self.ctl("s", &["-m", "immediate", "stop"]);
        let _ = self.ctl("p", &["-m", "immediate", "stop"]);
    }
}

#!/usr/bin/env bash
# A replicated ledger on one machine: a PostgreSQL primary (:55501) with a synchronous
# standby (:55502), and three anxind nodes (:50061, :50062, :50063) sharing one ledger id,
# signing key, vault secret and principals file (one operator token for every node). Run as root with Debian's postgresql installed (tests/run installs it)
# and the binaries built (cargo build --release). Everything lives under $ROOT.
#
#   examples/replicated.sh start    # databases and nodes
#   examples/replicated.sh stop
#
# Then (README, "Running replicated"): post to the leader (a follower answers
# NOT_LEADER with the leader's address), read from a follower, kill the leader and watch
# another take over within the lease (1 s here).
set -euo pipefail
ROOT=${ROOT:-/tmp/anxin-replicated}
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
ANXIND=${ANXIND:-target/release/anxind}
as_pg() { runuser -u postgres -- "$@"; }

start() {
  rm -rf "$ROOT"; mkdir -p "$ROOT"; chown postgres "$ROOT"
  as_pg "$BIN/initdb" -D "$ROOT/p" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
  cat >> "$ROOT/p/postgresql.conf" <<C
listen_addresses='127.0.0.1'
port=55501
unix_socket_directories=''
wal_level=replica
max_wal_senders=4
synchronous_standby_names='ANY 1 (s1)'
synchronous_commit=on
C
  echo "host replication all 127.0.0.1/32 trust" >> "$ROOT/p/pg_hba.conf"
  as_pg "$BIN/pg_ctl" -D "$ROOT/p" -l "$ROOT/p.log" -w start >/dev/null
  as_pg "$BIN/pg_basebackup" -h 127.0.0.1 -p 55501 -U postgres -D "$ROOT/s" -R -X stream
  echo "port=55502" >> "$ROOT/s/postgresql.conf"
  echo "primary_conninfo='host=127.0.0.1 port=55501 user=postgres application_name=s1'" >> "$ROOT/s/postgresql.auto.conf"
  as_pg "$BIN/pg_ctl" -D "$ROOT/s" -l "$ROOT/s.log" -w start >/dev/null
  head -c 32 /dev/urandom > "$ROOT/ledger.key"; chmod 600 "$ROOT/ledger.key"
  head -c 32 /dev/urandom > "$ROOT/vault.key"; chmod 600 "$ROOT/vault.key"
  for i in 1 2 3; do
    port=5006$i
    cat > "$ROOT/n$i.toml" <<C
ledger_id = "county-620121"
signing_key = "$ROOT/ledger.key"
vault_key = "$ROOT/vault.key"
[replication]
dsns = ["host=127.0.0.1 port=55501 user=postgres dbname=postgres", "host=127.0.0.1 port=55502 user=postgres dbname=postgres"]
node_id = "n$i"
advertise = "http://127.0.0.1:$port"
lease_ms = 1000
C
    # The first node writes the principals file and its operator token; the others share it.
    principals=(); [ "$i" = 1 ] || principals=(--principals "$ROOT/n1/principals.toml")
    ANXIN_LOG=info,anxin::replica=info "$ANXIND" --config "$ROOT/n$i.toml" --data "$ROOT/n$i" --listen 127.0.0.1:$port "${principals[@]}" \
      > "$ROOT/n$i.log" 2>&1 &
    echo $! > "$ROOT/n$i.pid"
    [ "$i" = 1 ] && for _ in $(seq 50); do [ -s "$ROOT/n1/dev-token" ] && break; sleep 0.1; done
  done
  sleep 2
  echo "nodes: http://127.0.0.1:50061,http://127.0.0.1:50062,http://127.0.0.1:50063 (logs $ROOT/n*.log)"
  echo "operator token (every node): $ROOT/n1/dev-token"
  grep -h "replication: leading" "$ROOT"/n*.log || true
}

stop() {
  for f in "$ROOT"/n*.pid; do kill "$(cat "$f")" 2>/dev/null || true; done
  as_pg "$BIN/pg_ctl" -D "$ROOT/s" -m fast stop >/dev/null 2>&1 || true
  as_pg "$BIN/pg_ctl" -D "$ROOT/p" -m fast stop >/dev/null 2>&1 || true
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac

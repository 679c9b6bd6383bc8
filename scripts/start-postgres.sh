#!/usr/bin/env bash
# Start the machine's PostgreSQL cluster and create the test role and database.
# Prints the URL the tests read (DRIFTLINE_TEST_POSTGRES_URL). Needs root (CI runs as root).
set -euo pipefail
read -r version cluster _ < <(pg_lsclusters --no-header | head -n 1)
pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start >/dev/null 2>&1 || true
for _ in $(seq 1 50); do
  su postgres -c "psql -qtAc 'select 1'" >/dev/null 2>&1 && break
  sleep 0.2
done
port=$(pg_lsclusters --no-header | awk -v v="$version" -v c="$cluster" '$1==v && $2==c {print $3}')
psql_do() { su postgres -c "psql -qtAc \"$1\""; }
[ "$(psql_do "select 1 from pg_roles where rolname='driftline'")" = 1 ] ||
  psql_do "create role driftline login password 'driftline'" >/dev/null
[ "$(psql_do "select 1 from pg_database where datname='driftline_test'")" = 1 ] ||
  psql_do "create database driftline_test owner driftline" >/dev/null
echo "postgresql://driftline:driftline@127.0.0.1:${port}/driftline_test"

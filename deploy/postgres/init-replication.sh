#!/bin/bash
# The primary's side of streaming replication (docker-compose.yml mounts it into
# /docker-entrypoint-initdb.d, so it runs once, when the data folder is created): a
# "replicator" role and a pg_hba line letting it stream. On a data folder made before,
# run it once by hand: docker compose exec -u postgres db bash /docker-entrypoint-initdb.d/10-replication.sh
# (wal_level=replica, max_wal_senders and hot_standby are PostgreSQL's defaults.)
set -euo pipefail

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v password="${REPLICATION_PASSWORD:-replicator}" <<'SQL'
SELECT format('CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD %L', :'password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'replicator') \gexec
SQL

if ! grep -q '^host replication replicator ' "$PGDATA/pg_hba.conf"; then
    echo 'host replication replicator all scram-sha-256' >> "$PGDATA/pg_hba.conf"
    psql --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -c 'SELECT pg_reload_conf()'
fi

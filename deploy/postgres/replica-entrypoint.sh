#!/bin/bash
# A hot standby of $PRIMARY_HOST (the db-replica service of the scale profile): on first
# start, copy the primary with pg_basebackup (-R writes standby.signal and the
# primary_conninfo), then start PostgreSQL as the image does. It answers reads only and
# follows the primary by streaming; see docs/deploy.md for the lag this implies.
set -euo pipefail

: "${PRIMARY_HOST:?the primary's host name}"
export PGPASSWORD="${REPLICATION_PASSWORD:-replicator}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    until pg_isready -h "$PRIMARY_HOST" -p 5432 -q; do
        echo "waiting for $PRIMARY_HOST"
        sleep 2
    done
    mkdir -p "$PGDATA"
    chown -R postgres:postgres "$(dirname "$PGDATA")"
    chmod 700 "$PGDATA"
    gosu postgres pg_basebackup --host "$PRIMARY_HOST" --port 5432 --username replicator \
        --pgdata "$PGDATA" --wal-method stream --write-recovery-conf --checkpoint fast \
        --progress
fi

exec docker-entrypoint.sh postgres -c hot_standby=on

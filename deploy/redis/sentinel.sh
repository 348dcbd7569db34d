#!/bin/sh
# One Redis Sentinel of the scale profile: watches $REDIS_MASTER_HOST under the name
# $REDIS_SENTINEL_MASTER (the app's REDIS_SENTINEL_MASTER); SENTINEL_QUORUM of them must
# agree that it is down before a replica is promoted. Sentinel rewrites its own config,
# so it is written to a writable place at each start.
set -eu
cat > /tmp/sentinel.conf <<CONF
port 26379
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel monitor ${REDIS_SENTINEL_MASTER} ${REDIS_MASTER_HOST} 6379 ${SENTINEL_QUORUM:-2}
sentinel down-after-milliseconds ${REDIS_SENTINEL_MASTER} 5000
sentinel failover-timeout ${REDIS_SENTINEL_MASTER} 30000
sentinel parallel-syncs ${REDIS_SENTINEL_MASTER} 1
CONF
exec redis-sentinel /tmp/sentinel.conf

#!/bin/sh
# A streaming replica of the compose file's primary: cloned with
# pg_basebackup on first start (the data volume empty), then started as a
# hot standby. The primary's image allows replication connections from the
# compose network (postgres/replication.sh).
set -e
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    mkdir -p "$PGDATA" && chown postgres "$PGDATA"
    until pg_isready -h postgres -U veritable; do sleep 1; done
    gosu postgres pg_basebackup -h postgres -U veritable -D "$PGDATA" -X stream -R -c fast
    chmod 700 "$PGDATA"
fi
exec gosu postgres postgres -c hot_standby=on

#!/bin/sh
# Run once by the postgres image's entrypoint when it creates the primary:
# the replica may connect for streaming replication from the compose network.
set -e
echo "host replication veritable samenet scram-sha-256" >> "$PGDATA/pg_hba.conf"
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "ALTER ROLE veritable REPLICATION"

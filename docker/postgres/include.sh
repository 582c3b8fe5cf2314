#!/bin/sh
# Run once by the postgres image's entrypoint when it creates the cluster:
# veritable's settings (veritable.conf, the same file cargo xtask applies).
set -e
echo "include '/etc/postgresql/veritable.conf'" >> "$PGDATA/postgresql.conf"

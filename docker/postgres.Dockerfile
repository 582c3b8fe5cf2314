# PostgreSQL 15 with the veritable extension. Build from the repository root:
#   docker build -f docker/postgres.Dockerfile -t veritable-postgres .
FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 postgresql-server-dev-15 libclang-dev clang \
 && rm -rf /var/lib/apt/lists/*
RUN cargo install cargo-pgrx --version 0.18.0 --locked \
 && cargo pgrx init --pg15=/usr/lib/postgresql/15/bin/pg_config
WORKDIR /src
COPY . .
RUN cd extension && cargo pgrx package --pg-config /usr/lib/postgresql/15/bin/pg_config

FROM postgres:15-bookworm
COPY --from=build /src/target/release/veritable-pg15/usr/share/postgresql/15/extension/ /usr/share/postgresql/15/extension/
COPY --from=build /src/target/release/veritable-pg15/usr/lib/postgresql/15/lib/ /usr/lib/postgresql/15/lib/
# The workload's settings, the file cargo xtask applies to its cluster.
COPY docker/postgres/veritable.conf /etc/postgresql/veritable.conf
COPY docker/postgres/include.sh /docker-entrypoint-initdb.d/00-veritable-settings.sh
# The primary accepts the replica's streaming connection; the replica's entrypoint.
COPY docker/postgres/replication.sh /docker-entrypoint-initdb.d/10-replication.sh
COPY docker/postgres/replica.sh /usr/local/bin/veritable-replica

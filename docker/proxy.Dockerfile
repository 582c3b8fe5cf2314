# veritable-proxy. Build from the repository root:
#   docker build -f docker/proxy.Dockerfile -t veritable-proxy .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p veritable-proxy

FROM debian:bookworm-slim
COPY --from=build /src/target/release/veritable-proxy /usr/local/bin/veritable-proxy
USER nobody
ENV VERITABLE_ADDR=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["veritable-proxy"]
CMD ["serve"]

# syntax=docker/dockerfile:1.7
# Custodian ledger service (port 8084). Build from the repository root:
#   docker build -f docker/ledger.Dockerfile -t custodian/ledger:latest .
# The six docker/<service>.Dockerfile files differ only in the service name and port; keep them
# in sync.

# ---- build -----------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS builder
WORKDIR /src
# rust:*-bookworm already carries pkg-config and libssl-dev (openssl crate).
COPY . .
# Cache mounts keep the crates.io registry and the target directory between builds; the binary
# is copied out of the cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,id=custodian-target,sharing=locked \
    cargo build --release --locked -p ledger --bin ledger \
    && install -D -m 0755 target/release/ledger /out/ledger

# ---- run -------------------------------------------------------------------------------------
FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 custodian \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin custodian \
    && mkdir -p /app/var \
    && chown -R 10001:10001 /app
WORKDIR /app
COPY --from=builder /out/ledger /usr/local/bin/ledger
USER 10001:10001
# /app/var is the only place the service writes (mount an emptyDir there when the root
# filesystem is read-only).
ENV HOST=0.0.0.0 \
    PORT=8084 \
    RUST_LOG=info
EXPOSE 8084
ENTRYPOINT ["/usr/local/bin/ledger"]

# syntax=docker/dockerfile:1
# The journeyd container image: `journeyd run` as a non-root user, with the example
# configuration and journeys in, as docs/operations.md ("Deploying") describes.
#
#   docker build -t journeyd:0.1.0 .        (or: buildah bud -t journeyd:0.1.0 .)
#
# Layout of the image:
#   /usr/local/bin/journeyd               the binary (ENTRYPOINT: journeyd run)
#   /etc/journeyd/config/journeyd.yaml    configuration (deploy/journeyd.yaml; on Kubernetes
#                                         the journeyd-config ConfigMap is mounted here)
#   /etc/journeyd/journeys/               journeys (journeys/; the journeyd-journeys ConfigMap)
#   /var/lib/journeyd                     working directory, owned by the journeyd user: mount
#                                         the state_dir volume here

# ---- build: Rust, plus the C toolchain, make and the OpenSSL headers that librdkafka's
# bundled build needs (TLS and SASL)
FROM rust:1.95-bookworm AS build
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config libssl-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The cache mounts keep the crate registry and the build directory between builds (BuildKit,
# buildah); the binary is copied out of the cached target directory.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p journeyd --bin journeyd \
 && install -m 0755 target/release/journeyd /usr/local/bin/journeyd

# ---- runtime: a slim Debian with OpenSSL and the CA certificates (TLS to the brokers)
FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 65532 journeyd \
 && useradd --system --uid 65532 --gid journeyd --home-dir /var/lib/journeyd \
      --shell /usr/sbin/nologin journeyd \
 && install -d -o journeyd -g journeyd -m 0750 /var/lib/journeyd
COPY --from=build /usr/local/bin/journeyd /usr/local/bin/journeyd
COPY deploy/journeyd.yaml /etc/journeyd/config/journeyd.yaml
COPY journeys/ /etc/journeyd/journeys/
# The configuration and journeys in the image are valid, or the build fails here.
RUN ["/usr/local/bin/journeyd", "validate", "--config", "/etc/journeyd/config/journeyd.yaml"]
USER 65532:65532
WORKDIR /var/lib/journeyd
# What differs in a container from the configuration file's values (environment overrides win
# over the file): the local state checkpoints go to the volume, and /metrics, /healthz and
# /readyz listen on the pod's address so probes and Prometheus reach them.
ENV JOURNEYD_STATE_DIR=/var/lib/journeyd/state \
    JOURNEYD_METRICS__LISTEN=0.0.0.0:9464
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/journeyd", "run"]
CMD ["--config", "/etc/journeyd/config/journeyd.yaml"]

# syntax=docker/dockerfile:1
#
# helm-handler controller image.
#
# Build context: the repository root, after `scripts/dev-setup` has placed the helm binary
# at .tools/bin/helm (the image copies it; nothing is downloaded during the build except
# crates from crates.io):
#
#   scripts/dev-setup
#   docker build -t ghcr.io/deployment-orchestrator/helm-handler:0.1.0 .
#
# Stage 1: build the release binary.
FROM rust:1.89-bookworm AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock clippy.toml ./
COPY crates ./crates
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p helm-handler --bin helm-handler \
    && install -D -m 0755 target/release/helm-handler /out/helm-handler

# Stage 2: the helm binary from the build context (installed by scripts/dev-setup).
FROM debian:bookworm-slim AS helm
COPY .tools/bin/helm /out/helm
RUN chmod 0755 /out/helm && /out/helm version --short

# Stage 3: runtime. distroless "cc" has glibc, libgcc and CA certificates; no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/helm-handler /usr/local/bin/helm-handler
COPY --from=helm /out/helm /usr/local/bin/helm
ENV HOME=/tmp \
    TMPDIR=/tmp
# 65532 = distroless "nonroot"
USER 65532:65532
VOLUME ["/var/cache/helm-handler", "/tmp"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/helm-handler"]
CMD ["run", "--cache-dir=/var/cache/helm-handler", "--helm-binary=/usr/local/bin/helm"]

# The cronpush image: one static binary on distroless, for every role (gateway, webhook, and the
# `start`/`sidecar` containers the webhook injects, which pass their role as arguments).
#
# Multi-arch:  docker buildx build --platform linux/amd64,linux/arm64 -t ghcr.io/cronpush/cronpush:0.1.0 .
# Each platform builds natively here (under QEMU emulation for the foreign one), so the musl
# target matches the build stage's architecture. Cross-compiling instead (a $BUILDPLATFORM build
# stage) needs cargo-zigbuild, as the Raspberry Pi binaries do.

FROM rust:1-bookworm AS build
ARG TARGETARCH
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/*
RUN case "$TARGETARCH" in \
        amd64) echo x86_64-unknown-linux-musl ;; \
        arm64) echo aarch64-unknown-linux-musl ;; \
        *) echo "unsupported TARGETARCH: $TARGETARCH" >&2; exit 1 ;; \
    esac > /rust-target \
    && rustup target add "$(cat /rust-target)"
WORKDIR /src
COPY . .
RUN cargo build --locked --profile dist --target "$(cat /rust-target)" --bin cronpush \
    && cp "target/$(cat /rust-target)/dist/cronpush" /cronpush

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /cronpush /usr/bin/cronpush
USER 65532:65532
# 9091: the gateway; 8443: the webhook (HTTPS).
EXPOSE 9091 8443
ENTRYPOINT ["/usr/bin/cronpush"]

# syntax=docker/dockerfile:1
# The target-allocator image: a drop-in for the OpenTelemetry Operator's
# Target Allocator image (spec.targetAllocator.image). The operator sets no
# command and only `--name=value` args, so the entrypoint is the allocator,
# which reads /conf/targetallocator.yaml by default, listens on :8080 and
# runs as 65532 like the reference image.
#
#   docker build -t target-allocator .
#
# See deploy/README.md.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
# host/build.rs compiles the built-in strategies for wasm32 and embeds them.
RUN rustup target add wasm32-unknown-unknown
COPY . .
# No debug info in the image (the release profile keeps line tables for
# local profiling); symbols stay for backtraces.
ENV CARGO_PROFILE_RELEASE_DEBUG=false
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p target-allocator --bin target-allocator \
    && install -D -m 0755 target/release/target-allocator /out/target-allocator

# glibc and libgcc_s (all the binary links besides the kernel), CA
# certificates, user nonroot (65532), no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/target-allocator /usr/local/bin/target-allocator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/target-allocator"]

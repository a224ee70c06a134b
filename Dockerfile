# syntax=docker/dockerfile:1
# Build: cargo-chef caches the dependency build in its own layer, keyed on a recipe that
# cargo-chef derives from every manifest and target in the workspace, so adding a binary,
# bench or example can never leave the cache step stale (no hand-written stubs).
FROM rust:1-bookworm AS chef
RUN cargo install cargo-chef --locked --version ^0.1
WORKDIR /src

FROM chef AS plan
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=plan /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json --bin rolecall
COPY . .
RUN cargo build --release --locked --bin rolecall \
    && mkdir -p /out/data

# Runtime: glibc and CA certificates only (no shell), non-root (uid 65532).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/rolecall /usr/local/bin/rolecall
# The data directory, owned by the runtime user (a volume mounted here starts as a copy).
COPY --from=build --chown=65532:65532 /out/data /var/lib/rolecall
# MALLOC_ARENA_MAX=2: glibc's per-thread arenas otherwise keep the memory of replaced
# snapshots; measured by scripts/soak (README, Soak), it holds RSS flat under writes.
ENV ROLECALL_LISTEN=0.0.0.0:8080 \
    ROLECALL_DATA_DIR=/var/lib/rolecall \
    MALLOC_ARENA_MAX=2
VOLUME ["/var/lib/rolecall"]
EXPOSE 8080
USER nonroot:nonroot
# `rolecall healthcheck` asks this replica's /readyz (no shell or curl in the image).
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/rolecall", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/rolecall"]
CMD ["serve"]

# syntax=docker/dockerfile:1
# Build stage: compile a release binary. Dependencies are cached in their own layer.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches && echo 'fn main() {}' > src/main.rs && echo '' > src/lib.rs \
    && echo 'fn main() {}' > benches/check.rs \
    && cargo build --release --locked --bin rolecall \
    && rm -rf src benches
COPY src src
COPY migrations migrations
COPY catalog catalog
COPY benches benches
COPY openapi.yaml ./
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin rolecall

# Runtime stage: glibc + CA certificates only, non-root (uid 65532).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/rolecall /usr/local/bin/rolecall
ENV ROLECALL_LISTEN=0.0.0.0:8080 \
    ROLECALL_DATA_DIR=/var/lib/rolecall
VOLUME ["/var/lib/rolecall"]
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/rolecall"]
CMD ["serve"]

# syntax=docker/dockerfile:1
# One image for both uses: `draftstore serve` (the Deployment) and `draftstore clean` (the CronJob).

# 1. Plan: the dependency recipe, which changes only when a manifest or the lock file does.
FROM rust:1.95-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /app

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# 2. Build the dependencies alone, cached as a layer, then the release binary.
FROM chef AS builder
COPY --from=planner /app/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bin draftstore

# 3. Run: glibc, CA certificates and a non-root user; no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /app/target/release/draftstore /usr/local/bin/draftstore
USER 65532:65532
EXPOSE 8080 50051
ENTRYPOINT ["/usr/local/bin/draftstore"]
CMD ["serve"]

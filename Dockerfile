# recado: the webhook gateway, as a small non-root container image.
#
#   docker build -t recado .
#   docker run --rm -p 8080:8080 recado
#   curl -s -H 'Content-Type: application/json' --data @examples/boleto.json \
#     'http://127.0.0.1:8080/hooks/boleto?token=demo-token'
#
# The image serves the shipped integrations/ from /etc/recado/integrations.
# Serve your own by mounting a folder over it (edits go live without a restart):
#   docker run --rm -p 8080:8080 -v "$PWD/integrations:/etc/recado/integrations:ro" recado
# Kubernetes example: deploy/kubernetes/recado.yaml (see deploy/README.md).

# ---- build ------------------------------------------------------------------
FROM rust:1-slim-bookworm AS builder
WORKDIR /build

# Only what the build reads: the manifest, the lockfile, the sources, and
# benches/ (Cargo.toml declares `[[bench]] name = "render"`, and cargo refuses
# a manifest whose declared target file is missing).
COPY Cargo.toml Cargo.lock ./
COPY src/ src/
COPY benches/ benches/

# The cache mounts (BuildKit, the default builder) keep downloaded crates and
# compiled dependencies between builds; the binary is copied out of the cached
# target/ in the same step because cache mounts are not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/build/target \
    cargo build --release --locked --bin recado \
    && cp target/release/recado /usr/local/bin/recado

# ---- run --------------------------------------------------------------------
# distroless/cc: glibc and libgcc only, no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot

COPY --from=builder /usr/local/bin/recado /usr/local/bin/recado
COPY integrations/ /etc/recado/integrations/

# Numeric (distroless' `nonroot`), so Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080

# SIGTERM (docker stop, Kubernetes) stops accepting connections and finishes
# the requests in flight; SIGHUP re-reads every tenant.
ENTRYPOINT ["/usr/local/bin/recado"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--dir", "/etc/recado/integrations"]

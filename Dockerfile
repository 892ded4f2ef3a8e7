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

# Profile-guided by default (./build-release: about 15 % less CPU per request;
# everything is compiled twice); `--build-arg PGO=0` for a plain release
# build. The profile's training is a python3 script, and llvm-tools merges
# the profile (installed here, in a layer, rather than on every build).
ARG PGO=1
RUN if [ "$PGO" != 0 ]; then \
      apt-get update && apt-get install -y --no-install-recommends python3 \
      && rm -rf /var/lib/apt/lists/* \
      && rustup component add llvm-tools; \
    fi

# Only what the build reads: the manifest, the lockfile, the sources, and
# benches/ (Cargo.toml declares `[[bench]] name = "render"`, and cargo refuses
# a manifest whose declared target file is missing; the profile's training is
# benches/pgo.py); the shipped examples' requests and the tests' copy of the
# demo tenant (tests/data), which the training answers and the built binary
# must pass (`recado check`, `recado test`). Not integrations/: the build
# never depends on what an operator keeps there.
# .ci/run copies exactly these paths and runs the step below on them.
COPY Cargo.toml Cargo.lock build-release ./
COPY src/ src/
COPY benches/ benches/
COPY examples/ examples/
COPY tests/data/ tests/data/

# The cache mounts (BuildKit, the default builder) keep downloaded crates and
# compiled dependencies between builds; the binary is copied out of the cached
# target/ in the same step because cache mounts are not part of the image.
# target/ is locked: the training rewrites its profile folder, which two
# builds at once (buildx, several platforms) would otherwise share.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/build/target,sharing=locked \
    PGO="$PGO" ./build-release /usr/local/bin/recado

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

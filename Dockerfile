# oc-harness, mock-teams and mock-carrier in one image, with the bundled scenarios: for sharded
# runs as a Kubernetes Indexed Job (deploy/kubernetes/). Multi-stage: the build stage compiles
# the workspace with the toolchain the project requires (rust-version 1.88 or later); the final
# stage is Debian slim with the three binaries, the scenarios, and a non-root user.
#
#   docker build -t oc-harness:dev .        (or: podman build -t oc-harness:dev .)
#   docker run --rm oc-harness:dev run scenarios/smoke.toml --out /data/smoke

# The base images, overridable where Docker Hub is out of reach (scripts/check-image.sh).
ARG BUILD_IMAGE=rust:1.88-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
# The manifests first, so that a change of source alone does not fetch the crates again.
COPY Cargo.toml Cargo.lock ./
COPY protocol protocol
COPY observe observe
COPY server-limits server-limits
COPY heap-meter heap-meter
COPY mock-teams mock-teams
COPY mock-carrier mock-carrier
COPY reports reports
COPY harness harness
# Compiled in: the scenario reference, the carrier formats and the certification suites.
COPY docs docs
COPY scenarios scenarios
RUN cargo build --release --locked -p oc-harness -p mock-teams -p mock-carrier \
    && install -D -m 0755 target/release/oc-harness target/release/mock-teams \
        target/release/mock-carrier -t /out/bin

FROM ${RUNTIME_IMAGE}
# ca-certificates: `reconcile --graph-url` and `certify` against a TLS carrier.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /opt/oc-harness oc \
    && mkdir -p /data \
    && chown oc:oc /data
COPY --from=build /out/bin/ /usr/local/bin/
COPY scenarios /opt/oc-harness/scenarios
USER 10001:10001
WORKDIR /opt/oc-harness
ENTRYPOINT ["oc-harness"]
CMD ["--help"]

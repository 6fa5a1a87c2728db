#!/usr/bin/env bash
# Builds the image of the root `Dockerfile` with buildah, offline, and checks what it holds: the
# three binaries run, as the non-root user, with the bundled scenarios (a smoke run inside the
# image passes).
#
# This machine reaches Debian's package mirror and crates.io but not Docker Hub, so the two base
# images the Dockerfile names (`rust:1.88-bookworm`, `debian:bookworm-slim`) cannot be pulled.
# The script makes stand-ins and passes them as the Dockerfile's build arguments:
#   - the runtime base: Debian bookworm from debootstrap (variant minbase, as debian:*-slim);
#   - the build base: the same plus gcc and libc6-dev and this machine's Rust toolchain
#     (`rustc --print sysroot`) installed under /usr/local, as the rust image has it, and the
#     certificate authorities this machine trusts (for crates.io).
# Where Docker Hub is reachable, `docker build .` (or `podman build .`) uses the real ones.
#
# Usage: scripts/check-image.sh [WORK_DIR]   (default: ${CARGO_TARGET_DIR:-target}/image)
# Installs buildah and debootstrap with apt-get when missing (as root). Storage: vfs, isolation:
# chroot (no daemon, no user namespaces needed). The build stage's cargo target and registry
# are cached in WORK_DIR between runs (`buildah bud --volume`), so a rerun compiles only what
# changed; the first run compiles the release build from scratch (minutes).
# Exit codes: 0 built and checked, 1 a check failed, 2 a tool missing.
set -euo pipefail
cd "$(dirname "$0")/.."

work=${1:-${CARGO_TARGET_DIR:-target}/image}
mkdir -p "$work"
work=$(cd "$work" && pwd)
export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot
tag=localhost/oc-harness:check

need() {
    command -v "$1" >/dev/null && return
    echo "$1 not found: installing Debian's $2 with apt-get" >&2
    apt-get install -y "$2" >&2 || { echo "error: could not install $2" >&2; exit 2; }
}
need buildah buildah
need debootstrap debootstrap

# An image from a root file system folder.
image_from() { # FOLDER NAME [ENV…]
    local c m e
    c=$(buildah from scratch)
    m=$(buildah mount "$c")
    cp -a "$1/." "$m/"
    buildah umount "$c" >/dev/null
    buildah config --env PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$c"
    for e in "${@:3}"; do buildah config --env "$e" "$c"; done
    buildah commit -q --rm "$c" "$2" >/dev/null
}

if ! buildah inspect --type image localhost/oc-base:runtime >/dev/null 2>&1; then
    echo "== runtime base: debootstrap bookworm (minbase)" >&2
    rm -rf "$work/runtime"
    debootstrap --variant=minbase bookworm "$work/runtime" http://deb.debian.org/debian >&2
    image_from "$work/runtime" localhost/oc-base:runtime
    rm -rf "$work/runtime"
fi
if ! buildah inspect --type image localhost/oc-base:build >/dev/null 2>&1; then
    echo "== build base: bookworm, gcc, libc6-dev and this machine's Rust toolchain" >&2
    rm -rf "$work/build"
    debootstrap --variant=minbase --include=gcc,libc6-dev,ca-certificates bookworm \
        "$work/build" http://deb.debian.org/debian >&2
    sysroot=$(rustc --print sysroot)
    mkdir -p "$work/build/usr/local/bin" "$work/build/usr/local/lib"
    cp -a "$sysroot/bin/." "$work/build/usr/local/bin/"
    cp -a "$sysroot/lib/." "$work/build/usr/local/lib/"
    # The certificate authorities this machine trusts: its way to crates.io may pass a proxy
    # that signs with its own authority.
    cp /etc/ssl/certs/ca-certificates.crt "$work/build/etc/ssl/certs/ca-certificates.crt"
    image_from "$work/build" localhost/oc-base:build CARGO_HOME=/usr/local/cargo
    rm -rf "$work/build"
fi

echo "== buildah bud (the Dockerfile, with the stand-in bases)" >&2
mkdir -p "$work/cargo-target" "$work/cargo-registry"
buildah bud --layers=false -t "$tag" \
    --build-arg BUILD_IMAGE=localhost/oc-base:build \
    --build-arg RUNTIME_IMAGE=localhost/oc-base:runtime \
    --volume "$work/cargo-target:/src/target" \
    --volume "$work/cargo-registry:/usr/local/cargo/registry" \
    . >&2

echo "== checks inside the image" >&2
failed=0
check() { # WHAT EXPECTED ACTUAL
    if [[ "$3" == *"$2"* ]]; then
        echo "ok: $1" >&2
    else
        echo "FAILED: $1: expected '$2', got: $3" >&2
        failed=1
    fi
}
c=$(buildah from "$tag")
trap 'buildah rm "$c" >/dev/null 2>&1 || true' EXIT
check "runs as the non-root user 10001" "10001" "$(buildah run "$c" -- id -u 2>&1)"
check "oc-harness on PATH" "oc-harness" "$(buildah run "$c" -- oc-harness --version 2>&1)"
check "mock-teams on PATH" "mock-teams" "$(buildah run "$c" -- mock-teams --version 2>&1)"
check "mock-carrier on PATH" "mock-carrier" "$(buildah run "$c" -- mock-carrier --version 2>&1)"
check "bundled scenarios" "smoke.toml" "$(buildah run "$c" -- ls /opt/oc-harness/scenarios 2>&1)"
smoke=$(buildah run "$c" -- oc-harness run scenarios/smoke.toml --out /data/smoke 2>&1; echo "exit $?")
check "a smoke run passes inside the image" "smoke — PASSED" "$smoke"
check "… and exits 0" "exit 0" "$(tail -1 <<<"$smoke")"
check "… writing its report where the user may write" "report.json" \
    "$(buildah run "$c" -- ls /data/smoke 2>&1)"
echo "image $tag: $(buildah images --format '{{.Size}}' "$tag")" >&2
exit $failed

#!/usr/bin/env bash
# Checks deploy/kubernetes/*.yaml against Kubernetes' own schemas, offline: installs the
# `kubernetes-validate` package from PyPI (which ships the schemas of each Kubernetes release)
# into a virtual environment under the target folder, then validates every manifest strictly
# (an unknown or misspelt field is an error) for the Kubernetes release in K8S_VERSION.
#
# Usage: scripts/check-k8s.sh            (K8S_VERSION=1.31 by default)
# Exit codes: 0 every manifest is valid, 1 one is not, 2 the validator could not be installed.
set -euo pipefail
cd "$(dirname "$0")/.."

version=${K8S_VERSION:-1.31}
venv=${CARGO_TARGET_DIR:-target}/k8s-venv
if [[ ! -x "$venv/bin/kubernetes-validate" ]]; then
    if ! { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet --disable-pip-version-check \
        'kubernetes-validate==1.31.*'; } >&2; then
        echo "error: could not install kubernetes-validate into $venv" >&2
        exit 2
    fi
fi
status=0
for manifest in deploy/kubernetes/*.yaml; do
    if "$venv/bin/kubernetes-validate" --strict --kubernetes-version "$version" "$manifest"; then
        :
    else
        status=1
    fi
done
exit "$status"

#!/usr/bin/env bash
# Checks the deployment artefacts without a cluster, Docker or a helm binary:
#   - renders deploy/helm/livecast with values.yaml and every values-region-*.yaml and lints it
#     (the Helm SDK embedded in the PyPI package helm-python-sdk),
#   - validates every rendered manifest against the Kubernetes schemas (kubernetes-validate),
#     plus the settings a schema cannot see (probes, drain vs grace period, maxUnavailable 0 for
#     the edge, non-root and read-only containers),
#   - checks that docker/Dockerfile builds every binary of the workspace and copies it into a
#     runtime stage of its own (bins from `cargo metadata`).
# The pinned tools go into a venv under .test-servers/ (git-ignored) on the first run.
# Usage: scripts/check-deploy.sh   (from anywhere; exits non-zero on any problem)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.test-servers/deploy-venv"
requirements="$root/scripts/check-deploy/requirements.txt"
stamp="$venv/.requirements"

if [ ! -x "$venv/bin/python" ] || ! cmp -s "$requirements" "$stamp"; then
  echo "check-deploy: installing $(grep -v '^#' "$requirements" | tr '\n' ' ')into $venv"
  mkdir -p "$root/.test-servers"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$stamp"
fi

metadata="$(mktemp)"
trap 'rm -f "$metadata"' EXIT
cargo metadata --no-deps --format-version 1 --offline >"$metadata" 2>/dev/null \
  || cargo metadata --no-deps --format-version 1 >"$metadata"

echo "check-deploy: chart deploy/helm/livecast, docker/Dockerfile"
"$venv/bin/python" "$root/scripts/check-deploy/check_deploy.py" "$root" "$metadata"

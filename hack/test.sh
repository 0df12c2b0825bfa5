#!/usr/bin/env bash
# The project's test run: every package, unit and integration, with a summary.
# Integration tests start real control planes from bin/ (make k8s-bins).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export KUBEBUILDER_ASSETS="${KUBEBUILDER_ASSETS:-$ROOT/bin}"

# Where the real-node tests can run (root on Linux), they must: a skip would
# let CI pass without them (test/cluster.RealNodeEnv).
if [ "$(uname -s)" = Linux ] && [ "$(id -u)" = 0 ]; then
  export NODEWARDEN_REAL_NODE="${NODEWARDEN_REAL_NODE:-required}"
fi

start=$SECONDS
# Two cores: run two packages at a time; each integration package starts its own control plane.
"$ROOT/bin/gotestsum" --format pkgname-and-test-fails --format-hide-empty-pkg -- \
  -count=1 -p 2 -timeout 30m ./... "$@"
echo "make test: all packages passed in $((SECONDS - start))s"

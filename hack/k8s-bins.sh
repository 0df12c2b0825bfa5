#!/usr/bin/env bash
# Builds the Kubernetes control plane and the tools the tests need, from source,
# at pinned versions. There is no Docker engine and no download of prebuilt
# binaries on our machines, only the Go module proxy, so everything is a `go build`.
#
# Built binaries live in a per-user cache keyed by version, and are linked into
# bin/: a fresh clone (as CI gets) re-links in seconds; only a version bump
# rebuilds.
#
# Usage: hack/k8s-bins.sh [tool...]   (default: all)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/bin"
CACHE="${NODEWARDEN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nodewarden}"

# Pinned versions. Changing one rebuilds only that tool.
K8S_VERSION=v1.37.2          # kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kubelet, kube-proxy
K8S_STAGING_VERSION=v0.37.2  # the k8s.io/<staging> module release matching K8S_VERSION
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0
HELM_VERSION=v3.22.0
KUSTOMIZE_VERSION=v5.8.2     # v5.8.3 needs Go 1.27
CONTROLLER_GEN_VERSION=v0.23.0
GOLANGCI_LINT_VERSION=v2.15.0
GOTESTSUM_VERSION=v1.13.0
CAPI_VERSION=v1.13.6         # Cluster API: only its CRDs, for the ClusterAPI repair's tests

export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
mkdir -p "$BIN" "$CACHE"

log() { printf '[k8s-bins] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

check_proxy() {
  # Fail with a clear message rather than a wall of `go` errors when the proxy is unreachable.
  [ -n "${_PROXY_OK:-}" ] && return 0
  local proxy
  proxy=$(go env GOPROXY | cut -d, -f1)
  case "$proxy" in off|direct) return 0 ;; esac
  if ! go list -m -versions k8s.io/client-go >/dev/null 2>&1; then
    die "cannot reach the Go module proxy ($proxy). The Kubernetes binaries are built from source and need it once; later runs use the cache in $CACHE."
  fi
  _PROXY_OK=1
}

# link NAME DIR: bin/NAME -> DIR/NAME
link() { ln -sfn "$2/$1" "$BIN/$1"; }

# have NAME DIR: DIR/NAME is built and bin/NAME points at it.
have() { [ -x "$2/$1" ] && [ "$(readlink "$BIN/$1" 2>/dev/null)" = "$2/$1" ]; }

# timed LABEL CMD...: run CMD and say how long it took.
timed() {
  local label=$1; shift
  local start=$SECONDS
  log "building $label ..."
  "$@"
  log "built $label in $((SECONDS - start))s"
}

k8s_ldflags() {
  local major minor
  major=$(echo "$K8S_VERSION" | sed -E 's/^v([0-9]+)\..*/\1/')
  minor=$(echo "$K8S_VERSION" | sed -E 's/^v[0-9]+\.([0-9]+)\..*/\1/')
  local f=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    f+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    f+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "-s -w$f"
}

# A throw-away module that requires k8s.io/kubernetes and points every staging
# module at its published release (k8s.io/kubernetes's own go.mod replaces them
# with ./staging paths, which do not exist outside its repository).
k8s_module() {
  local dir="$CACHE/build/kubernetes-$K8S_VERSION"
  if [ ! -f "$dir/.ready" ]; then
    check_proxy
    mkdir -p "$dir"
    local gomod
    gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    [ -f "$gomod" ] || die "could not download k8s.io/kubernetes@$K8S_VERSION"
    {
      echo "module nodewarden.local/k8s-build"
      echo "go 1.26.0"
      echo "require k8s.io/kubernetes $K8S_VERSION"
      echo "replace ("
      # Only staging modules that k8s.io/kubernetes requires (the sample-* ones are not published).
      grep -E '^\s+k8s\.io/[a-z0-9-]+ v0\.0\.0$' "$gomod" | awk -v v="$K8S_STAGING_VERSION" '{print "\t" $1 " => " $1 " " v}'
      echo ")"
    } >"$dir/go.mod"
    echo 'package main' >"$dir/main.go"
    (cd "$dir" && go mod download k8s.io/kubernetes >/dev/null && \
      go get "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" "k8s.io/kubernetes/cmd/kube-controller-manager@$K8S_VERSION" \
        "k8s.io/kubernetes/cmd/kube-scheduler@$K8S_VERSION" "k8s.io/kubernetes/cmd/kubectl@$K8S_VERSION" \
        "k8s.io/kubernetes/cmd/kubelet@$K8S_VERSION" "k8s.io/kubernetes/cmd/kube-proxy@$K8S_VERSION" >/dev/null 2>&1 || \
      die "resolving k8s.io/kubernetes $K8S_VERSION dependencies failed (see: cd $dir && go get k8s.io/kubernetes/cmd/kubectl@$K8S_VERSION)")
    touch "$dir/.ready"
  fi
  echo "$dir"
}

build_kube() {
  local name=$1 out="$CACHE/kubernetes-$K8S_VERSION"
  have "$name" "$out" && return 0
  if [ ! -x "$out/$name" ]; then
    check_proxy
    local mod; mod=$(k8s_module)
    mkdir -p "$out"
    timed "$name $K8S_VERSION" bash -c "cd '$mod' && go build -trimpath -ldflags '$(k8s_ldflags)' -o '$out/$name.tmp' k8s.io/kubernetes/cmd/$name && mv '$out/$name.tmp' '$out/$name'"
  fi
  link "$name" "$out"
}

build_etcd() {
  local out="$CACHE/etcd-$ETCD_VERSION" mod="$CACHE/build/etcd-$ETCD_VERSION"
  have etcd "$out" && return 0
  if [ ! -x "$out/etcd" ]; then
    check_proxy
    # etcd's go.mod has replace directives, so `go install pkg@version` refuses it.
    mkdir -p "$mod" "$out"
    printf 'module nodewarden.local/etcd-build\ngo 1.26.0\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$mod/go.mod"
    echo 'package main' >"$mod/main.go"
    (cd "$mod" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null 2>&1) || die "resolving etcd $ETCD_VERSION failed"
    timed "etcd $ETCD_VERSION" bash -c "cd '$mod' && go build -trimpath -ldflags '-s -w' -o '$out/etcd.tmp' go.etcd.io/etcd/server/v3 && mv '$out/etcd.tmp' '$out/etcd'"
  fi
  link etcd "$out"
}

# go_install NAME PKG VERSION: tools whose go.mod allows `go install pkg@version`.
go_install() {
  local name=$1 pkg=$2 version=$3 out="$CACHE/$1-$3"
  have "$name" "$out" && return 0
  if [ ! -x "$out/$name" ]; then
    check_proxy
    mkdir -p "$out"
    timed "$name $version" env GOBIN="$out" GOFLAGS= go install -trimpath -ldflags "-s -w ${4:-}" "$pkg@$version"
  fi
  link "$name" "$out"
}

build_kwok() {
  go_install kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION"
  # kwok acts only on nodes/pods that match Stage objects; its module ships the
  # "fast" stages (nodes Ready at once, pods Running at once).
  local stages="$CACHE/kwok-$KWOK_VERSION/stages-fast"
  if [ ! -f "$stages/pod-fast.yaml" ]; then
    local dir; dir=$(GOFLAGS= go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
    mkdir -p "$stages"
    local kind f
    for kind in node pod; do
      # One multi-document file per kind; the kustomization.yaml is not a Stage.
      for f in "$dir/kustomize/stage/$kind/fast/"*.yaml; do
        [ "$(basename "$f")" = kustomization.yaml ] && continue
        echo "---"
        cat "$f"
      done >"$stages/$kind-fast.yaml.tmp"
      mv "$stages/$kind-fast.yaml.tmp" "$stages/$kind-fast.yaml"
    done
  fi
  ln -sfn "$stages" "$BIN/kwok-stages"
}

# Cluster API's CRDs (Machine and the rest of config/crd/bases), copied from
# its module: the ClusterAPI repair is tested against the real schema, in an
# API server that serves them as Cluster API's own install does.
build_capi_crds() {
  local crds="$CACHE/cluster-api-$CAPI_VERSION/crds"
  if [ ! -f "$crds/cluster.x-k8s.io_machines.yaml" ]; then
    check_proxy
    local dir; dir=$(GOFLAGS= go mod download -json "sigs.k8s.io/cluster-api@$CAPI_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
    [ -f "$dir/config/crd/bases/cluster.x-k8s.io_machines.yaml" ] || die "no config/crd/bases in sigs.k8s.io/cluster-api@$CAPI_VERSION"
    rm -rf "$crds.tmp" && mkdir -p "$crds.tmp"
    cp "$dir"/config/crd/bases/*.yaml "$crds.tmp/"
    chmod u+w "$crds.tmp"/*.yaml # the module cache is read-only
    rm -rf "$crds" && mv "$crds.tmp" "$crds"
  fi
  ln -sfn "$crds" "$BIN/capi-crds"
}

want=("$@")
[ ${#want[@]} -eq 0 ] && want=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy kwok helm kustomize controller-gen gotestsum capi-crds)
total=$SECONDS
for tool in "${want[@]}"; do
  case "$tool" in
    kube-apiserver|kube-controller-manager|kube-scheduler|kubectl|kubelet|kube-proxy) build_kube "$tool" ;;
    etcd) build_etcd ;;
    kwok) build_kwok ;;
    capi-crds) build_capi_crds ;;
    helm) go_install helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" ;;
    kustomize) go_install kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION" ;;
    controller-gen) go_install controller-gen sigs.k8s.io/controller-tools/cmd/controller-gen "$CONTROLLER_GEN_VERSION" ;;
    gotestsum) go_install gotestsum gotest.tools/gotestsum "$GOTESTSUM_VERSION" ;;
    golangci-lint) go_install golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint "$GOLANGCI_LINT_VERSION" ;;
    actionlint) go_install actionlint github.com/rhysd/actionlint/cmd/actionlint v1.7.12 ;;
    *) die "unknown tool: $tool" ;;
  esac
done
log "all present in $BIN ($((SECONDS - total))s)"

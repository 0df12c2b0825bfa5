#!/usr/bin/env bash
# Installs the Debian packages that the real test node (test/cluster level 3,
# `make run-local`) runs: containerd, runc, the CNI plugins and iptables for
# kube-proxy. Pinned; a machine that has these versions skips everything.
#
# Without root or apt-get it installs nothing and says so: the real-node
# tests then skip with the reason (hack/test.sh makes them fail instead where
# the machine could have run them).
set -euo pipefail

# Debian 12 (bookworm). containerd 1.6 with runc: crun does not run on the
# hybrid cgroup hosts we test on.
PACKAGES=(
  containerd=1.6.20~ds1-1+deb12u3
  runc=1.1.5+ds1-1+deb12u1
  containernetworking-plugins=1.1.1+ds1-3+b5
  iptables=1.8.9-2
  # systemd-journal-remote writes real journal files from export-format input
  # for internal/journal's tests. Same version as the image's systemd, so
  # installing it does not upgrade libsystemd-shared and systemd with it.
  systemd-journal-remote=252.38-1~deb12u1
)

log() { printf '[node-deps] %s\n' "$*" >&2; }

missing=()
for p in "${PACKAGES[@]}"; do
  name=${p%%=*} version=${p#*=}
  [ "$(dpkg-query -W -f='${Version}' "$name" 2>/dev/null || true)" = "$version" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  log "not installing ${missing[*]}: needs root and apt-get (Debian). The real-node tests will skip and say why."
  exit 0
fi

start=$SECONDS
log "installing ${missing[*]} ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
  # A Debian point release replaces a version on the mirror; the tests only
  # need a containerd 1.6 with the CRI plugin, so take what the mirror has
  # rather than fail every run until this file is bumped.
  log "WARNING: the pinned versions are gone from the mirror; installing the current ones. Bump PACKAGES in $0:"
  apt-get install -y -qq --no-install-recommends "${missing[@]%%=*}" >/dev/null
  for p in "${missing[@]%%=*}"; do log "  $p=$(dpkg-query -W -f='${Version}' "$p")"; done
fi
log "installed in $((SECONDS - start))s"

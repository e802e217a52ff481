#!/usr/bin/env bash
# Makes sure etcd's server binary is on this machine, installing Debian's `etcd-server` (3.4) when
# it is missing. CI runs it as root before the tests; the etcd test harness (test/support/etcd-cluster.ts)
# runs it too when it finds no server. Idempotent; prints one line on failure.
set -euo pipefail

have_etcd() {
  command -v etcd >/dev/null 2>&1 || [ -x /usr/bin/etcd ]
}

if have_etcd; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "etcd is not installed and installing it needs root (apt-get install etcd-server)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "etcd is not installed and this machine has no apt-get to install it" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# policy-rc.d may refuse to start the packaged service; the binary is all the tests need.
apt-get install -y -qq --no-install-recommends etcd-server >/dev/null 2>&1 || true
have_etcd || { echo "apt-get could not install etcd-server: etcd is still missing" >&2; exit 1; }

#!/usr/bin/env bash
# Makes sure PostgreSQL's server binaries (initdb, pg_ctl) are on this machine, installing
# Debian's `postgresql` package when they are missing. CI runs it as root before the tests; the
# PostgreSQL test harness runs it too when it finds no server. Idempotent; prints one line on failure.
set -euo pipefail

have_postgres() {
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null 2>&1
}

if have_postgres; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "PostgreSQL is not installed and installing it needs root (apt-get install postgresql)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "PostgreSQL is not installed and this machine has no apt-get to install it" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
have_postgres || { echo "apt-get installed postgresql but initdb is still missing" >&2; exit 1; }

#!/bin/sh
# System packages the test suite needs on Debian (run as root, or with sudo available).
# Idempotent: installs only what is missing, so repeated `make test` runs touch nothing.
#   - chromium (/usr/bin/chromium): the browser Playwright drives for the web SDK tests
#     (Playwright's own browser downloads are never used: no `playwright install`).
#   - nodejs + npm: to fetch the pinned npm SDKs into tests/.cache/ (the browser SDKs, and the Node server SDKs,
#     run by `node`; @segment/analytics-node needs Node >= 20).
#   - postgresql (/usr/lib/postgresql/<version>/bin/initdb): the throwaway clusters of the PostgreSQL tests
#     (tests/support/postgres.py runs initdb and pg_ctl itself; the package's own cluster is not used).
set -eu

missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"

if [ -z "$missing" ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "install-system-deps: need root (or sudo) to install:$missing" >&2
    exit 1
fi

echo "install-system-deps: installing$missing"
$SUDO apt-get update -q
# shellcheck disable=SC2086  # word splitting of the package list is intended
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing

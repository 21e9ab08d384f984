#!/bin/sh
# A Kaon cluster on this machine: starts its own PostgreSQL, 2 collect + 2 process + 2 deliver processes,
# sends batches from many users, kill -9s one process of each role mid-run and restarts it, then checks
# exactly-once storage, at-least-once ordered delivery and the identity partition (bench/cluster.py).
# Usage: scripts/cluster-demo.sh [--users 200] [--batches 3000] [--per-role 2] [--no-kill]
set -eu
cd "$(dirname "$0")/.."
[ -x .venv/bin/kaon ] || make .venv/bin/kaon >/dev/null
[ -x /usr/lib/postgresql/15/bin/initdb ] || sh scripts/install-system-deps.sh
exec .venv/bin/python bench/cluster.py "$@"

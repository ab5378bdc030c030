#!/usr/bin/env bash
# Install everything the suite needs, then lint, type-check and run every test
# (browser tests included: a missing Chromium is installed, never skipped).
# This is the README's test command; .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the suite drives for real: Chromium (browser tests), PostgreSQL (the team
# journal, started by the tests in a temp dir), tmux (the terminal test of the CLI).
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium fonts-dejavu-core"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
command -v tmux >/dev/null 2>&1 || missing="$missing tmux"
if [ -n "$missing" ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev]"

.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/lint-imports
# Two workers (pytest-xdist): most of the suite waits on loopback servers and subprocesses,
# so two processes finish it in a little more than half the time on 2 cores. Groups keep the
# browser tests (one JupyterLab, one Chromium) and the PostgreSQL tests on one worker each
# (tests/conftest.py). Later options win: `bash tests/run.sh -n 0` runs in one process.
# The quick loop: `.venv/bin/python -m pytest -m "not slow and not browser" -n 2`.
.venv/bin/python -m pytest -n 2 --dist loadgroup "$@"

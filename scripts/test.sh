#!/usr/bin/env bash
# Set up everything the test suite needs, then run all of it (the README's test command, and CI's).
#
#   bash scripts/test.sh            # whole suite, real engines included (what CI runs)
#   bash scripts/test.sh -m "not slow"   # the fast subset; extra arguments go to pytest
#
# What it does, idempotently: a virtual environment in .venv (override with VENV=...), torch 2.13.0
# installed *before* anything that depends on torch (so no multi-GB CUDA build is pulled in), this
# checkout with its [diffusers,server,ray,test,dev] extras, the real stable-diffusion.cpp engine (bindings,
# sd-cli and sd-server, built once from PyPI's source package and cached under ~/.cache/abstractvision/sdcpp),
# Debian's chromium for the browser tests (driven by Playwright, which downloads no browser), and
# AbstractCore for the integration tests (without its dependencies: it pins an older published
# abstractvision). Then ruff, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${VENV:-.venv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
py="$venv/bin/python"
# pip, quiet; on failure its whole log is shown and the script stops.
pip() {
  local log status=0
  log=$(mktemp)
  "$py" -m pip --disable-pip-version-check -q "$@" >"$log" 2>&1 || status=$?
  [ "$status" -eq 0 ] || cat "$log" >&2
  rm -f "$log"
  return "$status"
}
# System tools some tests drive: Debian's chromium (browser tests; no browser download), curl and
# jq (docs/server.md's examples run as written). Installed when missing and we may.
missing=""
for tool in chromium curl jq; do command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"; done
if [ -n "$missing" ] && command -v apt-get >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo -n"
  # shellcheck disable=SC2086
  $sudo apt-get install -y -q $missing >/dev/null 2>&1 \
    || { $sudo apt-get update -q >/dev/null 2>&1 && $sudo apt-get install -y -q $missing >/dev/null 2>&1; } \
    || echo "could not install:$missing (the tests that need them will be skipped)" >&2
fi
pip install "torch==2.13.0"
pip install -e ".[diffusers,server,ray,test,dev]"
"$py" -c "import torch, diffusers, abstractvision" >/dev/null
PYTHON="$py" bash scripts/build_sdcpp.sh >/dev/null  # the sd.cpp test fixtures find the cached build
pip install --no-deps "abstractcore==2.30.*"
pip install "pydantic>=2"
"$venv/bin/ruff" check src tests bench
"$venv/bin/ruff" format --check src tests bench
exec "$py" -m pytest "$@"

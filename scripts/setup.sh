#!/usr/bin/env bash
# Idempotent setup on Debian 12 (bookworm) with Python 3.11: system packages only if missing, a virtualenv in
# .venv (created once, reused), and the project installed editable with its dev extra (only when pyproject.toml
# changed since the last install). Safe to run again and again; README.md's two commands both start with it.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if command -v python3.11 >/dev/null 2>&1; then PY=python3.11; else PY=python3; fi
fi

missing=()
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then missing+=(python3-venv); fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  echo "setup: apt-get update"
  $SUDO apt-get update -qq
  echo "setup: apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" \
    | grep -E '^(Get|Setting up|Unpacking)' | sed 's/^/setup:   /' || true
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $("$PY" --version)"
  "$PY" -m venv .venv
fi

stamp=.venv/.huntaze-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || ! .venv/bin/python -c 'import controller, moto' >/dev/null 2>&1; then
  echo "setup: installing the project and its dev extra into .venv (log: .venv/pip-install.log)"
  log=.venv/pip-install.log
  started=$SECONDS
  { .venv/bin/python -m pip install --progress-bar off --upgrade pip \
      && .venv/bin/python -m pip install --progress-bar off -e '.[dev]'; } >"$log" 2>&1 &
  pip_pid=$!
  trap 'kill "$pip_pid" 2>/dev/null || true' EXIT  # an interrupted setup leaves no pip behind
  # A line every few seconds with what pip is doing, so a long install is never silent.
  while kill -0 "$pip_pid" 2>/dev/null; do
    sleep 3
    step="$(grep -E '^(Collecting|Downloading|Building|Installing|Processing|Obtaining)' "$log" 2>/dev/null | tail -1 \
            | cut -c1-100 || true)"
    count="$(grep -cE '^(Collecting|Requirement already satisfied)' "$log" 2>/dev/null || true)"
    kill -0 "$pip_pid" 2>/dev/null && echo "setup: [$((SECONDS - started))s] ${count:-0} packages resolved; ${step:-starting pip}"
  done
  if ! wait "$pip_pid"; then
    tail -40 "$log" >&2
    echo "setup: pip install failed (full log: $log)" >&2
    exit 1
  fi
  trap - EXIT
  echo "setup: installed in $((SECONDS - started))s"
  echo "$want" > "$stamp"
fi
echo "setup: ready (.venv, redis-server $(redis-server --version | awk '{print $3}'), $(/usr/bin/chromium --version 2>/dev/null | head -1))"

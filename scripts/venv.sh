#!/usr/bin/env bash
# Create .venv (once) and install what the project needs. Prefers Python 3.12
# (the python3.12 Lambda runtime lasts longer and takes current wheels);
# falls back to python3 with a clear message.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
STAMP=$VENV/.installed

pick_python() {
  if command -v python3.12 >/dev/null 2>&1 && python3.12 -c 'import sys' >/dev/null 2>&1; then
    echo "python3.12"; return
  fi
  if command -v pyenv >/dev/null 2>&1; then
    local v
    v=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12(\.|$)' | tail -n 1 || true)
    if [ -n "$v" ]; then echo "env PYENV_VERSION=$v python3.12"; return; fi
  fi
  echo "sluice: Python 3.12 not found; using $(python3 --version 2>&1) (Lambda runtime will follow it)" >&2
  echo "python3"
}

if [ ! -x "$VENV/bin/python" ]; then
  PY=$(pick_python)
  $PY -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || [ requirements.txt -nt "$STAMP" ] || [ requirements-dev.txt -nt "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
  # grep drops pip's warnings about this machine's unused local index folders.
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e . 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  touch "$STAMP"
fi

#!/usr/bin/env bash
# Creates .venv with Python 3.10 and installs the locked dependencies and the project.
# Called by make when pyproject.toml or requirements.lock changed; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

is_py310() { [ -x "$1" ] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; }

find_python310() {
  local candidate
  for candidate in "${PYTHON310:-}" \
      "$(command -v pyenv >/dev/null 2>&1 && ls -d "$(pyenv root)"/versions/3.10.*/bin/python3.10 2>/dev/null | sort -V | tail -n 1)" \
      "$(command -v python3.10 || true)" /usr/bin/python3.10 /usr/local/bin/python3.10; do
    if [ -n "$candidate" ] && is_py310 "$candidate"; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

if [ -x .venv/bin/python ] && ! is_py310 .venv/bin/python; then
  echo "bootstrap: .venv is not Python 3.10; recreating it" >&2
  rm -rf .venv
fi

if [ ! -x .venv/bin/python ]; then
  if ! python=$(find_python310); then
    cat >&2 <<'MSG'
error: Python 3.10 is required (Rasa 3.6.21 supports Python 3.8-3.10 only), and none was found.
Install it, then run make again, with one of:
  pyenv install 3.10          (this project looks in $(pyenv root)/versions/3.10.*)
  apt-get install python3.10 python3.10-venv
or point PYTHON310 at an existing interpreter: make PYTHON310=/path/to/python3.10 ...
MSG
    exit 1
  fi
  echo "bootstrap: creating .venv with $python"
  "$python" -m venv .venv
fi

# This machine's pip configuration names an index folder that may not exist; pip says so for
# every package. Only that line is dropped; pipefail keeps pip's exit status.
pip() {
  .venv/bin/python -m pip "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
}

echo "bootstrap: installing the locked dependencies (a few minutes the first time)"
pip install --quiet --upgrade "pip>=24,<25"
pip install --quiet -r requirements.lock
pip install --quiet --no-deps --no-build-isolation -e .

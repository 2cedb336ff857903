#!/usr/bin/env bash
# Create .venv at the repo root and install memstore with the given extras, idempotently.
# Usage: scripts/bootstrap.sh [extras]   e.g. scripts/bootstrap.sh test,crewai,postgres
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
extras="${1:-}"
python="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
  if ! "$python" -m venv .venv 2>/dev/null; then
    # Debian's python3 ships venv separately.
    echo "bootstrap: installing python3-venv with apt" >&2
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    rm -rf .venv
    "$python" -m venv .venv
  fi
fi

spec="."
[ -n "$extras" ] && spec=".[${extras}]"
stamp=".venv/.memstore-installed"
want="$(cat pyproject.toml | sha256sum | cut -c1-16) ${extras}"
if [ ! -f "$stamp" ] || ! grep -qxF -- "$want" "$stamp"; then
  echo "bootstrap: installing memstore${extras:+[$extras]} into .venv" >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  # The distribution was called "memstore" before it became "memstore-ai": drop the old one.
  .venv/bin/python -m pip uninstall --quiet --disable-pip-version-check -y memstore 2>/dev/null || true
  rm -rf src/memstore.egg-info
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec"
  .venv/bin/python -c "import memstore" # fail loudly if the install did not work
  echo "$want" >> "$stamp"
fi

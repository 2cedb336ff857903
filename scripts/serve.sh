#!/usr/bin/env bash
# Set up .venv, then run the memstore server on the embedded default (SQLite + local model).
# Extra arguments pass to `memstore serve`, e.g. scripts/serve.sh --port 9000
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/bootstrap.sh" fast  # simsimd: the int8 first pass of dense search (docs/performance.md)
cd "$root"
exec .venv/bin/memstore serve "$@"

#!/usr/bin/env bash
# Set up .venv with everything the tests need, then run them (all but those marked slow).
# Extra pytest arguments pass through, e.g. scripts/test.sh -m crewai
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/bootstrap.sh" test
cd "$root"
export CREWAI_DISABLE_TELEMETRY=true CREWAI_TRACING_ENABLED=false OTEL_SDK_DISABLED=true
if [ "$#" -eq 0 ]; then
  set -- -m "not slow"
fi
exec .venv/bin/python -m pytest "$@"

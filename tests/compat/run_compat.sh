#!/usr/bin/env bash
# One compat suite run: ensures the venv of published client VERSION (scripts/install-compat,
# quick when cached), then runs test_compat.py with that venv's python.
# Usage: run_compat.sh VERSION   (FLOWMESH_BIN_DIR names our binaries, as for tests/e2e)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="$1"
line="$("$here/../../scripts/install-compat" "$version" | tail -n 1)"
venv="${line#* }"
cd "$here"
exec "$venv/bin/python" -m unittest -v --durations 0 test_compat

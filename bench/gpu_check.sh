#!/usr/bin/env bash
# The prepared GPU check (bench/gpu_check.py says what it measures): at most 5 minutes, one table.
#   bench/gpu_check.sh [--device cpu]     # CUDA by default; on a CPU it proves the script works, at small sizes
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
limit=300; [[ " $* " == *" cpu "* || " $* " == *"--device=cpu"* ]] && limit=3600  # a CPU only proves the script
PYTHONPATH=. timeout $limit "$PYTHON" bench/gpu_check.py "$@"
rc=$?
[ $rc -eq 124 ] && echo "gpu check: stopped at its time limit (the rows above are complete)"
exit $rc

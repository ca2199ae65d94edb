#!/bin/sh
# The scheduled fuzz run: every target, 250,000 inputs each (2,750,000 in all), at low
# CPU priority, each target bounded to 15 minutes. Corpus, crash artifacts, logs and
# summary.md / summary.json go to $WXCALLBACK_FUZZ_DIR (default .fuzz/), which a
# scheduler should keep between runs so the corpus keeps growing.
#
#   fuzz/scheduled.sh                         # the full run (see docs/reliability_fuzz.md for its time)
#   FUZZ_INPUTS=1000000 fuzz/scheduled.sh     # a deeper one
#
# Exits 1 if any target crashed, hung, ran out of memory or stopped short.
set -eu
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
exec nice -n "${FUZZ_NICE:-10}" "$PYTHON" fuzz/run.py --target all \
    --inputs "${FUZZ_INPUTS:-250000}" --seconds "${FUZZ_SECONDS_PER_TARGET:-900}" "$@"

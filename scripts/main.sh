#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs the C10K sweep
# (every server model, concurrency 1 to 10,000), leaving the tables and the
# plots in the folder it prints.
#   scripts/main.sh                  the default sweep (under 10 minutes)
#   scripts/main.sh sweep [ARGS]     the sweep with spindle sweep's options
#   scripts/main.sh micro [ARGS]     the micro-benchmarks against their peers
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build -DBUILD_TESTING=OFF
what=${1:-sweep}
[ $# -gt 0 ] && shift
case "$what" in
    sweep) exec build/tools/spindle sweep --out "sweep-$(date +%Y%m%d-%H%M%S)" "$@" ;;
    micro) exec build/tools/spindle micro --peers "$@" ;;
    *) echo "usage: scripts/main.sh [sweep|micro] [options]" >&2; exit 2 ;;
esac

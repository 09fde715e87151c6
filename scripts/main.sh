#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs the micro-benchmarks
# against their peers (Boost.Context, Boost.Fiber, State Threads, glibc,
# pthreads) in one run.  Extra arguments go to `spindle micro`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build -DBUILD_TESTING=OFF
exec build/tools/spindle micro --peers "$@"

#!/usr/bin/env bash
# Installs the Debian packages that spindle's build, tests and benchmarks need.
# Idempotent: packages already present are not fetched again, so a fresh
# Debian 12 machine and a warm one both run it first.
set -euo pipefail

build=(build-essential cmake pkg-config liburing-dev libcmocka-dev valgrind)
tests=(curl socat python3 apache2-utils wrk libhttp-parser-dev
       clang libclang-rt-14-dev procps)
peers=(libboost-context-dev libboost-fiber-dev libst-dev libuv1-dev libevent-dev
       golang-go nginx-light gnuplot-nox)

want=("${build[@]}" "${tests[@]}")
[ "${1:-}" = "--no-peers" ] || want+=("${peers[@]}")

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
        || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: all ${#want[@]} packages present"
    exit 0
fi
echo "deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
echo "deps: done"

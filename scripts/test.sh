#!/usr/bin/env bash
# Runs every test: sets the machine up (scripts/setup.sh), builds, fuzzes the inbound readers briefly
# (scripts/fuzz.sh), and runs `swift test`.
# Tests that need Kafka start their own Tansu broker on a free loopback port (ShardflowTesting's
# LocalBroker) and stop it; the trap below is a second line of defence so no broker outlives this script.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
# shellcheck disable=SC1091
source .tools/env.sh
cleanup() { pkill -f "^$SHARDFLOW_TANSU broker" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
swift build --build-tests "$@"
# A short fuzzing run of the inbound readers (longer ones: scripts/fuzz.sh SECONDS); before the tests, so
# the test runner's summary stays the last line.
bash scripts/fuzz.sh "${SHARDFLOW_FUZZ_SECONDS:-30}"
swift test --skip-build "$@"

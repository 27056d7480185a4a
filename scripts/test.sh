#!/usr/bin/env bash
# Runs every test: sets the machine up (scripts/setup.sh), builds, and runs `swift test`.
# Tests that need Kafka start their own Tansu broker on a free loopback port (LocalBroker) and stop it;
# the trap below is a second line of defence so no broker outlives this script.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
# shellcheck disable=SC1091
source .tools/env.sh
cleanup() { pkill -f "^$SHARDFLOW_TANSU broker" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
swift build --build-tests "$@"
swift test --skip-build "$@"

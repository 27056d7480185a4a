#!/usr/bin/env bash
# The main job on the embedded default: sets the machine up, builds a release binary, then
# `shardflow demo` starts a local Kafka broker (Tansu), the mock LLM and a worker, runs a batch of
# `llm-chain` workflows through them with a live progress line, prints the report and stops everything.
# Extra arguments go to `shardflow demo` (see `shardflow demo --help`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
# shellcheck disable=SC1091
source .tools/env.sh
cleanup() { pkill -f "^$SHARDFLOW_TANSU broker" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
swift build -c release --product shardflow
.build/release/shardflow demo "$@"

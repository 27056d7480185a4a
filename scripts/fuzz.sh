#!/usr/bin/env bash
# Fuzzes the inbound readers (JSON parser, inbound message decoding, the Codable decoder) with
# libFuzzer and AddressSanitizer for a bounded time.
#
#   scripts/fuzz.sh [seconds]        default 60
#
# Builds .build-fuzz/inbound-fuzzer from Sources/ShardflowJSON, the engine's inbound contract
# (Sources/ShardflowEngine/Contract/InboundMessages.swift) and Fuzz/InboundFuzzer/main.swift with
# swiftc directly (not SwiftPM, so `swift build` is unaffected). Starts from the seed corpus in
# Fuzz/corpus (never written to) plus what earlier runs kept in .build-fuzz/corpus, with the token
# dictionary Fuzz/json.dict. Prints the executions and the crashes found; crash inputs are left in
# .build-fuzz/crashes/, and the script exits 1 when there is one.
# Reproduce one with: .build-fuzz/inbound-fuzzer .build-fuzz/crashes/<file>
#
# Environment: FUZZ_MAX_LEN (default 1100000, a little over the 1 MiB message limit),
# FUZZ_TIMEOUT (seconds one input may take before it counts as a hang, default 10),
# FUZZ_ARGS (more libFuzzer flags, e.g. -seed=1).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
seconds="${1:-60}"
case "$seconds" in ''|*[!0-9]*) echo "usage: scripts/fuzz.sh [seconds]" >&2; exit 2 ;; esac
out=.build-fuzz
mkdir -p "$out/modules" "$out/obj" "$out/corpus" "$out/crashes"

swiftc_bin="$(command -v swiftc || true)"
if [ -z "$swiftc_bin" ]; then echo "fuzz: swiftc is not on PATH (install the Swift toolchain)" >&2; exit 2; fi
# libFuzzer and ASan come with the Swift toolchain (its clang resource directory), not from Debian:
# Debian's libclang-rt-*-dev belongs to Debian's clang, which swiftc does not link with.
toolchain="$(cd "$(dirname "$(readlink -f "$swiftc_bin")")/.." && pwd)"
arch="$(uname -m)"
runtime="$toolchain/lib/swift/clang/lib/linux/libclang_rt.fuzzer-$arch.a"
if [ ! -f "$runtime" ]; then
  echo "fuzz: $runtime is missing: this Swift toolchain has no libFuzzer runtime (use a swift.org toolchain for Linux)" >&2
  exit 2
fi
# ASan symbolizes stacks with llvm-symbolizer; the toolchain ships one.
if [ -x "$toolchain/bin/llvm-symbolizer" ]; then export ASAN_SYMBOLIZER_PATH="$toolchain/bin/llvm-symbolizer"; fi
# Swift's own crash backtracer would take over libFuzzer's crash handling (and can hang there).
export SWIFT_BACKTRACE=enable=no

json_sources=(Sources/ShardflowJSON/*.swift)
# The engine's inbound contract and the small files it uses (which import nothing but ShardflowJSON).
engine_sources=()
for file in InboundMessages.swift MessageLimits.swift; do
  if [ -f "Sources/ShardflowEngine/Contract/$file" ]; then engine_sources+=("Sources/ShardflowEngine/Contract/$file"); fi
done
fuzzer_sources=(Fuzz/InboundFuzzer/*.swift)
binary="$out/inbound-fuzzer"
flags=(-sanitize=fuzzer,address -parse-as-library -O -g -package-name shardflow -I "$out/modules")
# The toolchain's lld: the system's gold warns about every ASan thunk it cannot export.
link=(); [ -x "$toolchain/bin/ld.lld" ] && link=(-use-ld=lld)

# Rebuild only when a source or this script is newer than the binary.
stale=1
if [ -x "$binary" ]; then
  stale=0
  for source in "${json_sources[@]}" "${engine_sources[@]}" "${fuzzer_sources[@]}" "$root/scripts/fuzz.sh"; do
    if [ "$source" -nt "$binary" ]; then stale=1; break; fi
  done
fi
if [ "$stale" = 1 ]; then
  echo "fuzz: building $binary"
  # One module each, as SwiftPM builds them, so access control is the same as in the package.
  swiftc "${flags[@]}" -wmo -module-name ShardflowJSON -emit-module -emit-module-path "$out/modules/ShardflowJSON.swiftmodule" \
    -c "${json_sources[@]}" -o "$out/obj/ShardflowJSON.o"
  swiftc "${flags[@]}" -wmo -module-name ShardflowEngine -emit-module -emit-module-path "$out/modules/ShardflowEngine.swiftmodule" \
    -c "${engine_sources[@]}" -o "$out/obj/ShardflowEngine.o" || {
      echo "fuzz: InboundMessages.swift no longer compiles on its own: add the engine files it now needs to engine_sources" >&2
      exit 2
    }
  swiftc "${flags[@]}" "${link[@]}" -module-name InboundFuzzer "${fuzzer_sources[@]}" "$out/obj/ShardflowJSON.o" "$out/obj/ShardflowEngine.o" \
    -o "$binary.part"
  mv "$binary.part" "$binary"
fi

before=$(find "$out/crashes" -type f | wc -l)
log="$out/last-run.log"
echo "fuzz: running for ${seconds}s (log: $log)"
set +e
"$binary" "$out/corpus" Fuzz/corpus \
  -max_total_time="$seconds" -max_len="${FUZZ_MAX_LEN:-1100000}" -timeout="${FUZZ_TIMEOUT:-10}" \
  -dict=Fuzz/json.dict -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$out/crashes/" \
  ${FUZZ_ARGS:-} >"$log" 2>&1
status=$?
set -e
after=$(find "$out/crashes" -type f | wc -l)

executions=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | awk '{s+=$1} END {print s+0}')
rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | awk '{s+=$1} END {print s+0}')
coverage=$(grep -o 'cov: [0-9]*' "$log" | tail -n1 | grep -o '[0-9]*' || echo "?")
echo "fuzz: $executions executions, $rate exec/s, coverage $coverage edges, corpus $(find "$out/corpus" -type f | wc -l) inputs"
echo "fuzz: $((after - before)) new crash input(s) in $out/crashes/ ($after in all)"
if [ "$after" -gt "$before" ] || [ "$status" -ne 0 ]; then
  grep -E 'ERROR: |Fatal error|SUMMARY|artifact_prefix|Test unit written' "$log" | head -n 20 >&2 || true
  echo "fuzz: FAILED (libFuzzer exit $status); see $log" >&2
  exit 1
fi
echo "fuzz: ok"

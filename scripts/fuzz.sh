#!/bin/bash
# Builds every libFuzzer target in FuzzTesting/ and runs each for SECONDS (default 30).
# Corpora persist in FuzzTesting/corpus/<target> (seeded from FuzzTesting/Seeds/<target>);
# the first crash, leak, out-of-memory or timeout stops the run with a non-zero exit and
# leaves the input in FuzzTesting/artifacts/ (turn it into a regression test with the
# input committed under Tests/DombCoreTests/Fixtures/fuzz/).
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../FuzzTesting"
SECONDS_EACH=${1:-30}; shift || true
mkdir -p artifacts
if ! swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library >artifacts/build.log 2>&1; then
  grep -E "error:" artifacts/build.log | head -20
  echo "FAIL: the fuzz targets do not build; see FuzzTesting/artifacts/build.log"; exit 1
fi
BIN=$(swift build -c release --show-bin-path)
# Leaks inside uninstrumented system libraries we cannot fix (lsan.supp says which and why).
export LSAN_OPTIONS="suppressions=$PWD/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  mapfile -t TARGETS < <(ls Sources)
fi
for t in "${TARGETS[@]}"; do
  mkdir -p "corpus/$t"
  [ -d "Seeds/$t" ] && cp -n Seeds/"$t"/* "corpus/$t/" 2>/dev/null || true
  DICT=(); [ -f "Dictionaries/$t.dict" ] && DICT=(-dict="Dictionaries/$t.dict")
  echo "== $t for ${SECONDS_EACH}s"
  # -rss_limit_mb/-malloc_limit_mb: an input that makes a parser allocate without bound is
  # a failure. The full libFuzzer output is kept in artifacts/<target>.log.
  set +e
  "$BIN/$t" "corpus/$t" "${DICT[@]}" -max_total_time="$SECONDS_EACH" -timeout=10 \
    -rss_limit_mb=2048 -malloc_limit_mb=512 -artifact_prefix="artifacts/$t-" -print_final_stats=1 \
    >"artifacts/$t.log" 2>&1
  status=$?
  set -e
  grep -E "^#[0-9]+[[:space:]].*cov:" "artifacts/$t.log" | tail -1 || true
  grep -E "^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)" "artifacts/$t.log" | tr '\n' ' ' || true; echo
  if [ "$status" -ne 0 ]; then
    grep -E "==[0-9]+==ERROR|^SUMMARY|Fatal error|Test unit written|ALARM|out-of-memory|leak" "artifacts/$t.log" | head -10 || true
    echo "FAIL: $t exited $status; see FuzzTesting/artifacts/$t.log and the input in FuzzTesting/artifacts/"
    exit 1
  fi
done
echo "fuzzing passed: ${#TARGETS[@]} targets, ${SECONDS_EACH}s each"

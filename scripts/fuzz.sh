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
swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library 2>&1 | grep -vE "Cannot export local symbol|^\[" || true
BIN=$(swift build -c release --show-bin-path)
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  mapfile -t TARGETS < <(ls Sources)
fi
mkdir -p artifacts
for t in "${TARGETS[@]}"; do
  mkdir -p "corpus/$t"
  [ -d "Seeds/$t" ] && cp -n Seeds/"$t"/* "corpus/$t/" 2>/dev/null || true
  DICT=(); [ -f "Dictionaries/$t.dict" ] && DICT=(-dict="Dictionaries/$t.dict")
  echo "== $t for ${SECONDS_EACH}s"
  # -rss_limit_mb: an input that makes a parser allocate without bound is a failure.
  set +e
  "$BIN/$t" "corpus/$t" "${DICT[@]}" -max_total_time="$SECONDS_EACH" -timeout=10 \
    -rss_limit_mb=1024 -malloc_limit_mb=512 -artifact_prefix="artifacts/$t-" -print_final_stats=1 2>&1 \
    | grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE|==[0-9]+==ERROR|SUMMARY|Done)|cov:" | tail -4
  status=${PIPESTATUS[0]}
  set -e
  if [ "$status" -ne 0 ]; then echo "FAIL: $t exited $status; see FuzzTesting/artifacts/"; exit 1; fi
done
echo "fuzzing passed: ${#TARGETS[@]} targets, ${SECONDS_EACH}s each"

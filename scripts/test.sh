#!/bin/bash
# The whole test suite: installs packages, builds warning-free, runs every test against
# real swtpm/OpenSSL/dtc/tpm2-tools, and checks that no swtpm was left running.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
swift build --build-tests -Xswiftc -warnings-as-errors
swift test --skip-build 2>&1 | tee /tmp/domb-test.log | grep -vE '^(\x1b\[[0-9;]*m)?. Test (case passing|.* started)' || { tail -50 /tmp/domb-test.log; exit 1; }
grep -qE 'Test run with [0-9]+ tests? .*passed' /tmp/domb-test.log
if pgrep -f 'domb-swtpm|domb-demo' >/dev/null; then
  echo "FAIL: swtpm processes were left running:"; pgrep -af 'domb-swtpm|domb-demo'; exit 1
fi
# Every libFuzzer target for a short time (docs/fuzzing.md): a parser regression that
# crashes, leaks or hangs on the seeds or nearby inputs fails CI.
make fuzz-smoke
